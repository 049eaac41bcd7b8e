"""Responses glue for structured outputs and function calling.

``text.format`` and the flat ``tools`` / ``tool_choice`` become a constraint (see
``serverroom.constraints``); the calls themselves are read by the generation layer and rendered
as ``function_call`` items by ``run.ResponseRun``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from serverroom.api.items import Item, render_items
from serverroom.api.responses import code_interpreter, file_search
from serverroom.constraints import (
    FormatSpec,
    ToolSetup,
    ToolSpec,
    check_tools,
    custom_spec,
    parse_format,
)
from serverroom.constraints.schema import strict_by_default
from serverroom.errors import InvalidRequestError

if TYPE_CHECKING:
    from serverroom.api.responses.schemas import ResponseContextFields, ResponseCreateRequest


def response_format(request: ResponseContextFields) -> FormatSpec | None:
    text = request.text or {}
    return parse_format(text.get("format"), param="text.format", nested=False)


def check_json_word(fmt: FormatSpec | None, instructions: str | None, items: list[Item]) -> None:
    """``json_object`` needs the word "json" somewhere in what the model reads (as on the
    platform, so the model is told to write JSON)."""
    if fmt is None or fmt.kind != "json_object":
        return
    said = " ".join(m.content for m in render_items(instructions, items)).lower()
    if "json" not in said:
        raise InvalidRequestError(
            "Response input messages must contain the word 'json' in some form to use"
            " 'text.format' of type 'json_object'.",
            param="input",
            code="invalid_value",
        )


SUPPORTED_TOOLS = ("function", "custom", file_search.NAME, "mcp", "code_interpreter")


SERVER_RUN = (file_search.NAME, code_interpreter.NAME)  # tools offered as calls the server runs


def supported_tools(request: ResponseCreateRequest, policy: str) -> ResponseCreateRequest:
    """The request with only tool types this server runs: any other is a 400 naming it, or,
    with the ``ignore`` policy, left out (and a ``tool_choice`` forcing it becomes ``auto``)."""
    kept: list[dict[str, Any]] = []
    for index, tool in enumerate(request.tools or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in SUPPORTED_TOOLS:
            kept.append(tool)
        elif policy != "ignore":
            raise InvalidRequestError(
                f"Tool type {kind!r} is not supported by this server; supported:"
                f" {', '.join(SUPPORTED_TOOLS)}.",
                param=f"tools[{index}].type",
                code="unsupported_value",
            )
    if len(kept) == len(request.tools or []):
        return request
    choice = request.tool_choice
    if isinstance(choice, dict) and choice.get("type") not in (*SUPPORTED_TOOLS, "allowed_tools"):
        choice = "auto"
    return request.model_copy(update={"tools": kept, "tool_choice": choice})


def _choice_error(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="tool_choice", code="invalid_value")


def _server_run_specs(request: ResponseContextFields) -> list[tuple[str, ToolSpec]]:
    """The request's server-run tools (type, the function it is offered as), each checked."""
    out = []
    if file_search.parse_tool(request.tools) is not None:
        out.append(("file_search", file_search.SPEC))
    if code_interpreter.parse_tool(request.tools) is not None:
        out.append(("code_interpreter", code_interpreter.SPEC))
    return out


def response_tools(
    request: ResponseContextFields, hosted: Sequence[ToolSpec] = ()
) -> ToolSetup | None:
    """Function tools (flat form), ``file_search`` and ``hosted`` (MCP servers' tools), the
    last two offered as functions the server runs (see ``file_search`` and ``mcp``)."""
    specs = [
        ToolSpec(
            name=str(t.get("name")),
            description=t.get("description"),
            parameters=t.get("parameters"),
            strict=strict_by_default(t),
        )
        for t in request.tools or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    specs += [
        custom_spec(t, f"tools[{i}]")
        for i, t in enumerate(request.tools or [])
        if isinstance(t, dict) and t.get("type") == "custom"
    ]
    choice = request.tool_choice
    for tool_type, spec in _server_run_specs(request):
        if any(s.name == spec.name for s in specs):
            raise InvalidRequestError(
                f"A tool may not be named '{spec.name}' next to the {tool_type} tool.",
                param="tools",
            )
        specs.append(spec)
    runs = bool(hosted) or any(s.name in SERVER_RUN for s in specs)
    specs += hosted
    if not specs:
        return None
    check_tools(specs, param_prefix="tools[{index}].parameters")
    hosted_choice = {file_search.NAME: file_search.NAME, "code_interpreter": code_interpreter.NAME}
    if isinstance(choice, dict) and choice.get("type") in hosted_choice:
        forced = hosted_choice[str(choice["type"])]
        if not any(s.name == forced for s in specs):
            raise _choice_error(
                f"Invalid value for 'tool_choice': there is no {choice['type']} tool."
            )
        return ToolSetup(specs, mode="required", forced=forced, parallel=False)
    # One call at a time when the server runs some: a search is answered before more calls.
    parallel = request.parallel_tool_calls is not False and not runs
    if choice is None or choice in ("auto", "none", "required"):
        return ToolSetup(specs, mode=choice or "auto", parallel=parallel)  # type: ignore[arg-type]
    if not isinstance(choice, dict):
        raise _choice_error(f"Invalid value for 'tool_choice': '{choice}'.")
    names = {s.name for s in specs}
    if choice.get("type") in ("function", "custom"):
        if choice.get("name") not in names:
            raise _choice_error(
                f"Invalid value for 'tool_choice': function '{choice.get('name')}' is not in"
                " 'tools'."
            )
        return ToolSetup(specs, mode="required", forced=str(choice["name"]), parallel=False)
    if choice.get("type") == "allowed_tools":
        wanted = {ref.get("name") for ref in choice.get("tools") or []}
        subset = [s for s in specs if s.name in wanted]
        mode = choice.get("mode", "auto")
        if not subset or mode not in ("auto", "required"):
            raise _choice_error("Invalid value for 'tool_choice': no usable allowed tools.")
        return ToolSetup(subset, mode=mode, parallel=parallel)
    if choice.get("type") == "mcp":
        return _mcp_choice(choice, specs, hosted)
    return None  # hosted-tool choices belong to other features


def _mcp_choice(
    choice: dict[str, Any], specs: list[ToolSpec], hosted: Sequence[ToolSpec]
) -> ToolSetup:
    """``{"type": "mcp", "server_label", "name"?}``: a call to that tool, or to one of that
    server's tools (model names of a server's tools may carry its label, see ``mcp``)."""
    label, name = choice.get("server_label"), choice.get("name")
    mine = [s for s in hosted if s.server == label]
    if name is not None:
        mine = [s for s in mine if s.name in (name, f"{label}__{name}")]
    if not mine:
        raise _choice_error(f"Invalid value for 'tool_choice': no MCP tool {name or label!r}.")
    if len(mine) == 1:
        return ToolSetup(specs, mode="required", forced=mine[0].name, parallel=False)
    return ToolSetup(mine, mode="required", parallel=False)
