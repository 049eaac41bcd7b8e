"""What an output must look like (format + tools) and the per-choice constraint enforcing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serverroom.constraints.grammar import (
    ANSWER_MARGIN,
    GrammarConstraint,
    PrefixSwitchConstraint,
    check_grammar,
)
from serverroom.constraints.schema import check_strict, json_grammar, tighten
from serverroom.constraints.toolcalls import RepeatGuard
from serverroom.constraints.tools import CALL_OPEN, ToolSetup, tool_grammar
from serverroom.engine.base import Engine, TokenConstraint
from serverroom.errors import InvalidRequestError

ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class FormatSpec:
    """A structured-output request: ``json_object`` (schema None) or ``json_schema``."""

    kind: str  # "json_object" | "json_schema"
    name: str = "response"
    schema: dict[str, Any] | None = None
    strict: bool = False

    def grammar_schema(self) -> dict[str, Any]:
        if self.schema is None:
            return ANY_OBJECT
        return self.schema if self.strict else tighten(self.schema)


def parse_format(fmt: Any, *, param: str, nested: bool) -> FormatSpec | None:
    """Read Chat ``response_format`` (``nested``: under ``json_schema``) or Responses
    ``text.format`` (flat). ``None`` for plain text. Strict schemas are checked (400)."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or "type" not in fmt:
        raise InvalidRequestError(
            f"Invalid '{param}': expected an object with 'type'.", param=param
        )
    kind = fmt["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return FormatSpec(kind="json_object")
    if kind != "json_schema":
        raise InvalidRequestError(
            f"Invalid value for '{param}.type': '{kind}'. Supported values are: 'text',"
            " 'json_object' and 'json_schema'.",
            param=f"{param}.type",
            code="invalid_value",
        )
    body = fmt.get("json_schema") if nested else fmt
    where = f"{param}.json_schema" if nested else param
    if not isinstance(body, dict):
        raise InvalidRequestError(
            f"Missing required parameter: '{where}'.",
            param=where,
            code="missing_required_parameter",
        )
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"Missing required parameter: '{where}.name'.",
            param=f"{where}.name",
            code="missing_required_parameter",
        )
    schema = body.get("schema")
    if schema is None:
        schema = {"type": "object"} if not body.get("strict") else None
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            f"Invalid '{where}.schema': expected a JSON schema object.",
            param=f"{where}.schema",
            code="invalid_value",
        )
    strict = bool(body.get("strict"))
    if strict:
        check_strict(schema, kind="response_format", name=name, param=param)
    return FormatSpec(kind="json_schema", name=name, schema=schema, strict=strict)


@dataclass(frozen=True)
class OutputPlan:
    """The compiled grammar for one request; ``new_constraint()`` once per choice."""

    engine: Engine
    grammar: str
    switch_marker: str | None = None  # free text may follow: stop masking once it is text
    tools: bool = False  # tool calls possible: stop when the model repeats a call
    tool_rounds: int = 0  # after tool results: an answer unless a call is clearly preferred

    def new_constraint(self) -> TokenConstraint:
        inner = GrammarConstraint(
            self.engine.constraint_tokenizer(),
            self.grammar,
            self.engine.vocab_size,
            decide_ends=self.tools,
            lean_from=CALL_OPEN if self.tool_rounds else None,
            lean_margin=ANSWER_MARGIN * self.tool_rounds,
        )
        outer: TokenConstraint = inner
        if self.switch_marker is not None:
            outer = PrefixSwitchConstraint(inner, self.switch_marker)
        if self.tools:
            outer = RepeatGuard(outer, self.engine.token_bytes)
        return outer


def constrains(fmt: FormatSpec | None, tools: ToolSetup | None) -> bool:
    """Whether :func:`plan_output` would build a grammar (so the caller needs a thread)."""
    return fmt is not None or (tools is not None and tools.active)


def plan_output(
    engine: Engine,
    fmt: FormatSpec | None,
    tools: ToolSetup | None,
    *,
    format_param: str = "response_format",
    tools_param: str = "tools",
) -> OutputPlan | None:
    """The grammar for a request's output, or None when the output is unconstrained."""
    tokenizer = engine.constraint_tokenizer()
    if tools is not None and tools.active:
        text_schema = fmt.grammar_schema() if fmt is not None else None
        grammar = tool_grammar(tools, text_schema)
        check_grammar(tokenizer, grammar, param=tools_param, what="tools")
        switch = CALL_OPEN[0] if (text_schema is None and not tools.must_call) else None
        return OutputPlan(engine, grammar, switch, tools=True, tool_rounds=tools.tool_rounds)
    if fmt is None:
        return None
    grammar = json_grammar(fmt.grammar_schema(), strict=fmt.strict)
    check_grammar(tokenizer, grammar, param=format_param, what=format_param)
    return OutputPlan(engine, grammar)
