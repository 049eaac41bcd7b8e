"""Chat Completions glue for structured outputs and function calling.

Reads ``response_format`` / ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` into the
constraints package's terms, and turns generated text back into ``tool_calls``.
"""

from __future__ import annotations

from typing import Any

from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.constraints import (
    FormatSpec,
    ToolSetup,
    ToolSpec,
    check_tools,
    custom_spec,
    parse_format,
)
from serverroom.errors import InvalidRequestError


def chat_format(request: ChatCompletionRequest) -> FormatSpec | None:
    fmt = parse_format(request.response_format, param="response_format", nested=True)
    if fmt is not None and fmt.kind == "json_object":
        said = " ".join(m.text() for m in request.messages).lower()
        if "json" not in said:
            raise InvalidRequestError(
                "'messages' must contain the word 'json' in some form, to use 'response_format'"
                " of type 'json_object'.",
                param="messages",
                code="invalid_value",
            )
    return fmt


def custom_names(tools: ToolSetup | None) -> set[str]:
    """The names of the custom tools among ``tools`` (their calls carry plain-text input)."""
    return {t.name for t in tools.tools if t.custom is not None} if tools is not None else set()


def _choice_error(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="tool_choice", code="invalid_value")


def chat_tools(request: ChatCompletionRequest) -> ToolSetup | None:
    """The request's tool setup, or None when it offers no tools."""
    choice = request.tool_choice
    if not request.tools:
        if choice is not None and choice != "none":
            raise _choice_error(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools'"
                " are specified."
            )
        return None
    specs = [
        ToolSpec(
            name=t.function.name,
            description=t.function.description,
            parameters=t.function.parameters,
            strict=bool(t.function.strict),
        )
        if t.function is not None
        else custom_spec({"custom": t.custom}, f"tools[{i}].custom")
        for i, t in enumerate(request.tools)
    ]
    check_tools(specs, param_prefix="tools[{index}].function.parameters")
    names = {s.name for s in specs}
    parallel = request.parallel_tool_calls is not False
    if choice is None or choice in ("auto", "none", "required"):
        mode = choice or "auto"
        return ToolSetup(specs, mode=mode, parallel=parallel)  # type: ignore[arg-type]
    if isinstance(choice, str):
        raise _choice_error(
            f"Invalid value for 'tool_choice': '{choice}'. Supported values are: 'none',"
            " 'auto' and 'required'."
        )
    return _object_choice(choice, specs, names, parallel)


def _object_choice(
    choice: dict[str, Any], specs: list[ToolSpec], names: set[str], parallel: bool
) -> ToolSetup:
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = (choice.get(kind) or {}).get("name")
        if name not in names:
            raise _choice_error(
                f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'."
            )
        return ToolSetup(specs, mode="required", forced=str(name), parallel=False)
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        refs = allowed.get("tools") or []
        wanted = {(ref.get(ref.get("type", "function")) or {}).get("name") for ref in refs}
        subset = [s for s in specs if s.name in wanted]
        if not subset:
            raise _choice_error("Invalid value for 'tool_choice': no allowed tool is in 'tools'.")
        mode = allowed.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise _choice_error(f"Invalid value for 'tool_choice.allowed_tools.mode': '{mode}'.")
        return ToolSetup(subset, mode=mode, parallel=parallel)
    raise _choice_error(f"Invalid value for 'tool_choice.type': '{kind}'.")
