"""Function calling for any model: tools described in the system prompt, calls forced by grammar.

The format (documented in docs/function-calling.md) is the widely trained "Hermes" one::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Several calls (``parallel_tool_calls``) are separated by one newline. Under ``required`` or a
named function the output must be calls; under ``auto`` it is either calls or text that does
not start with ``<`` (or, with a response format, JSON in that format); under ``none`` no tools
are offered. Each call's ``arguments`` follows that function's parameters schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from llguidance import LLMatcher

from serverroom.constraints.schema import JSON_OPTIONS, check_strict, tighten
from serverroom.engine.base import ChatMessage
from serverroom.errors import InvalidRequestError

CALL_OPEN = "<tool_call>\n"
CALL_CLOSE = "\n</tool_call>"
CALL_SEP = "\n"
MAX_PARALLEL = 8
# A string argument whose schema sets no maxLength (nor enum, const, format or pattern) is
# generated with at most this many characters: a small model that never closes its quote
# cannot hold a slot for the rest of its reply. The output still validates against the schema.
MAX_ARGUMENT_CHARS = 256
# A custom tool's free-text input (no grammar) likewise ends after this many characters.
MAX_INPUT_CHARS = 2000
EMPTY_PARAMS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

Mode = Literal["auto", "required", "none"]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool = False
    server: str | None = None  # the MCP server label of a tool the server runs for the model
    custom: dict[str, Any] | None = None  # a custom tool's input format (plain-text input)

    def schema(self) -> dict[str, Any]:
        if self.parameters is None or not self.parameters:
            return dict(EMPTY_PARAMS)
        return self.parameters if self.strict else tighten(self.parameters)


@dataclass(frozen=True)
class ToolSetup:
    """The tools a request offers and how it may use them."""

    tools: list[ToolSpec]
    mode: Mode = "auto"
    forced: str | None = None  # a named function under tool_choice {"type": "function", ...}
    parallel: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    tool_rounds: int = 0  # rounds of calls and results the prompt ends with (see ``after``)

    def after(self, messages: Sequence[ChatMessage]) -> ToolSetup:
        """This setup for a prompt of ``messages``: when they end with tool results, the
        reply leans to answering, the more the more rounds of calls led there since the
        user last spoke (see ``GrammarConstraint``'s ``lean_from``)."""
        rounds, after_result = 0, False
        if messages and messages[-1].role in ("tool", "function"):
            for message in reversed(messages):  # a round: a run of results (after its calls)
                result = message.role in ("tool", "function")
                if not result and message.role != "assistant":
                    break
                rounds += result and not after_result
                after_result = result
        return replace(self, tool_rounds=rounds) if rounds != self.tool_rounds else self

    @property
    def answer_first(self) -> bool:
        """The prompt ends with tool results: a further call must be clearly preferred."""
        return self.tool_rounds > 0

    @property
    def active(self) -> bool:
        return bool(self.tools) and self.mode != "none"

    @property
    def must_call(self) -> bool:
        return self.mode == "required" or self.forced is not None

    def without(self, name: str) -> ToolSetup | None:
        """The same setup with tool ``name`` gone (a call to it is no longer forced)."""
        rest = [t for t in self.tools if t.name != name]
        if not rest:
            return None
        forced = None if self.forced == name else self.forced
        mode: Mode = "auto" if self.forced == name else self.mode
        return replace(self, tools=rest, mode=mode, forced=forced)

    def callable_tools(self) -> list[ToolSpec]:
        if self.forced is not None:
            return [t for t in self.tools if t.name == self.forced]
        return self.tools


def custom_spec(tool: dict[str, Any], param: str) -> ToolSpec:
    """A custom tool (Responses' flat form, or Chat's under ``custom``) as a ``ToolSpec``; its
    ``format`` is text, or a Lark or regex grammar (400 when it is none of these)."""
    nested = tool.get("custom")
    body: dict[str, Any] = nested if isinstance(nested, dict) else tool
    name = body.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise InvalidRequestError(
            f"Invalid value for '{param}.name': a custom tool needs a name of letters, digits,"
            " '_' and '-'.",
            param=f"{param}.name",
            code="invalid_value",
        )
    fmt: dict[str, Any] = body.get("format") or {"type": "text"}
    inner = fmt.get("grammar")
    grammar: dict[str, Any] = inner if isinstance(inner, dict) else fmt  # Chat nests it
    if fmt.get("type") == "text":
        return ToolSpec(name, body.get("description"), custom={"type": "text"})
    syntax, definition = grammar.get("syntax"), grammar.get("definition")
    if fmt.get("type") != "grammar" or syntax not in ("lark", "regex") or not definition:
        raise InvalidRequestError(
            f"Invalid value for '{param}.format': expected {{'type': 'text'}} or a grammar with"
            " 'syntax' 'lark' or 'regex' and a 'definition'.",
            param=f"{param}.format",
            code="invalid_value",
        )
    custom = {"type": "grammar", "syntax": syntax, "definition": str(definition)}
    return ToolSpec(name, body.get("description"), custom=custom)


def check_tools(tools: list[ToolSpec], *, param_prefix: str) -> None:
    """Strict tools must have strict-subset parameters (400 otherwise)."""
    for index, tool in enumerate(tools):
        if tool.strict and tool.parameters is not None:
            check_strict(
                tool.parameters,
                kind="function",
                name=tool.name,
                param=param_prefix.format(index=index),
            )


def _rebase_refs(node: Any, base: str) -> Any:
    if isinstance(node, dict):
        return {
            key: base + value[1:]
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _rebase_refs(value, base)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase_refs(item, base) for item in node]
    return node


def bound_strings(node: Any, limit: int = MAX_ARGUMENT_CHARS) -> Any:
    """A copy of a schema whose unbounded string schemas get ``maxLength: limit``."""
    if isinstance(node, list):
        return [bound_strings(item, limit) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: bound_strings(value, limit) for key, value in node.items()}
    kinds = out.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    bounded = {"maxLength", "enum", "const", "format", "pattern"} & out.keys()
    if is_string and not bounded:
        out["maxLength"] = limit
    return out


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    arguments = bound_strings(tool.schema())
    return {
        "type": "object",
        "properties": {
            "name": {"const": tool.name},
            "arguments": _rebase_refs(arguments, "#/properties/arguments"),
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
        "x-guidance": {**JSON_OPTIONS, "lenient": not tool.strict},
    }


def tool_grammar(setup: ToolSetup, text_grammar: dict[str, Any] | None = None) -> str:
    """The llguidance grammar for the output under ``setup``.

    ``text_grammar``: the JSON schema answers must follow when they are not calls (a
    response format); ``None`` means free text.
    """
    tools = setup.callable_tools()
    names = [f"f{i}" for i in range(len(tools))]
    repeat = f'("{_lark(CALL_SEP)}" call){{0,{MAX_PARALLEL - 1}}}' if setup.parallel else ""
    lines = [
        # A newline after a call may still end the reply: the model that writes one is not
        # thereby forced into another call (which is how small models chained invented ones).
        f'calls: call {repeat} "{_lark(CALL_SEP)}"?',
        f'call: "{_lark(CALL_OPEN)}" ({" | ".join(names)})',
    ]
    subgrammars: list[dict[str, str]] = []
    for name, tool in zip(names, tools, strict=True):
        if tool.custom is None:
            lines.append(f'{name}: {name}_call "{_lark(CALL_CLOSE)}"')
            lines.append(f"{name}_call: %json {json.dumps(_call_schema(tool))}")
        else:
            lines += _custom_rules(name, tool, subgrammars)
    if setup.must_call:
        start = "start: calls"
    elif text_grammar is not None:
        schema = {**text_grammar, "x-guidance": JSON_OPTIONS}
        start = "start: calls | answer"
        lines.append(f"answer: %json {json.dumps(schema)}")
    else:
        start = "start: calls | TEXT"
        lines.append(r"TEXT: /[^<\s][\s\S]*/")
    main = str(LLMatcher.grammar_from_lark("\n".join([start, *lines])))
    if not subgrammars:
        return main
    return json.dumps({"grammars": [{"lark_grammar": main}, *subgrammars]})


def _custom_rules(name: str, tool: ToolSpec, subgrammars: list[dict[str, str]]) -> list[str]:
    """A custom tool's call: its name, then its input as plain text under the tool's format
    (a Lark grammar or a regex, as a grammar of its own; free text up to the call's end)."""
    # The name as JSON, like every call's start: a literal here would clash with them.
    named = {
        "type": "object",
        "properties": {"name": {"const": tool.name}},
        "required": ["name"],
        "additionalProperties": False,
        "x-guidance": JSON_OPTIONS,
    }
    head = f'%json {json.dumps(named)} "\\n"'
    fmt = tool.custom or {}
    if fmt.get("type") != "grammar":
        return [
            f"{name}: {head} {name}_text",
            # lazy: the input ends at the first call end (the newline before it optional)
            f"{name}_text[lazy]: /(?s:.{{0,{MAX_INPUT_CHARS}}})"
            + _lark(CALL_CLOSE.lstrip()).replace("/", "\\/")
            + "/",
        ]
    definition = str(fmt.get("definition", ""))
    if fmt.get("syntax") == "regex":  # the whole input matches: anchors are implied
        pattern = definition.removeprefix("^").removesuffix("$")
        definition = "start: /" + re.sub(r"(?<!\\)/", r"\/", pattern) + "/"
    subgrammars.append({"name": f"{name}_input", "lark_grammar": definition})
    return [f'{name}: {head} @{name}_input "{_lark(CALL_CLOSE)}"']


def _lark(text: str) -> str:
    return json.dumps(text)[1:-1]


def _listed(tool: ToolSpec) -> dict[str, Any]:
    if tool.custom is not None:
        about = {"name": tool.name, "description": tool.description or "", "format": tool.custom}
        return {"type": "custom", "custom": about}
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description or "",
            "parameters": tool.parameters or EMPTY_PARAMS,
        },
    }


def tools_prompt(setup: ToolSetup) -> str:
    """The system-prompt section that describes the tools and the call format."""
    listing = "\n".join(json.dumps(_listed(t)) for t in setup.tools)
    rules = []
    if setup.forced is not None:
        rules.append(f"You must call the function `{setup.forced}` now.")
    elif setup.mode == "required":
        rules.append("You must call at least one function now.")
    else:
        rules.append("If no function is needed, answer the user directly.")
    if not setup.parallel:
        rules.append("Call at most one function per reply.")
    if any(t.custom is not None for t in setup.tools):
        rules.append(
            'Custom tools take plain text, not JSON arguments: after {"name": ...} and a'
            " newline, write just the text (for python: the program), then a newline and"
            " </tool_call>."
        )
    if setup.answer_first:
        rules.append(
            "The function results are in: answer the user with them now; do not call a"
            " function again with the same arguments."
        )
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listing}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within"
        " <tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
        "Function results come back within <tool_response></tool_response> XML tags.\n"
        + " ".join(rules)
    )


def call_text(name: str, arguments: str, *, custom: bool = False) -> str:
    """One call in the output format (used to replay earlier calls into the prompt); a
    custom tool's ``arguments`` are its plain-text input."""
    if custom:
        return f"{CALL_OPEN}{json.dumps({'name': name})}\n{arguments}{CALL_CLOSE}"
    try:
        args = json.dumps(json.loads(arguments), ensure_ascii=False)
    except json.JSONDecodeError:
        args = arguments
    return f'{CALL_OPEN}{{"name": {json.dumps(name)}, "arguments": {args}}}{CALL_CLOSE}'


def render_tool_messages(messages: list[ChatMessage], setup: ToolSetup | None) -> list[ChatMessage]:
    """Messages ready for any chat template: tools in the system prompt, earlier calls as
    ``<tool_call>`` text in assistant turns (the only content of such a turn, as this format
    never mixes text and calls; consecutive call turns merge), tool results as
    ``<tool_response>`` user turns."""
    out: list[ChatMessage] = []
    for message in messages:
        calls = message.extra.get("tool_calls") or []
        if message.role == "assistant" and calls:
            texts = []
            for call in calls:
                if call.get("type") == "custom":
                    custom = call.get("custom", {})
                    texts.append(
                        call_text(custom.get("name", ""), custom.get("input", ""), custom=True)
                    )
                    continue
                function = call.get("function", {})
                texts.append(call_text(function.get("name", ""), function.get("arguments", "{}")))
            content = CALL_SEP.join(texts)
            if out and out[-1].role == "assistant" and out[-1].content.startswith(CALL_OPEN):
                content = out.pop().content + CALL_SEP + content
            out.append(ChatMessage(role="assistant", content=content))
        elif message.role in ("tool", "function"):
            body = f"<tool_response>\n{message.content}\n</tool_response>"
            if out and out[-1].role == "user" and out[-1].content.startswith("<tool_response>"):
                out[-1] = ChatMessage(role="user", content=out[-1].content + "\n" + body)
            else:
                out.append(ChatMessage(role="user", content=body))
        else:
            out.append(message)
    if setup is not None and setup.active:
        section = tools_prompt(setup)
        if out and out[0].role == "system":
            out[0] = ChatMessage(role="system", content=out[0].content + "\n\n" + section)
        else:
            out.insert(0, ChatMessage(role="system", content=section))
    return out
