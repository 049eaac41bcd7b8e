"""Chat Completions glue for structured outputs and function calling (issue 5).

Reads ``response_format`` / ``tools`` / ``tool_choice`` / ``parallel_tool_calls`` into the
constraints package's terms, and turns generated text back into ``tool_calls``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall, ChoiceDeltaToolCallFunction
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)

from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.constraints import (
    ArgumentsPiece,
    CallStarted,
    FormatSpec,
    ParsedCall,
    ToolEvent,
    ToolSetup,
    ToolSpec,
    check_tools,
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
        for t in request.tools
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
    if kind == "function":
        name = (choice.get("function") or {}).get("name")
        if name not in names:
            raise _choice_error(
                f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'."
            )
        return ToolSetup(specs, mode="required", forced=str(name), parallel=False)
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        wanted = {(ref.get("function") or {}).get("name") for ref in allowed.get("tools") or []}
        subset = [s for s in specs if s.name in wanted]
        if not subset:
            raise _choice_error("Invalid value for 'tool_choice': no allowed tool is in 'tools'.")
        mode = allowed.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise _choice_error(f"Invalid value for 'tool_choice.allowed_tools.mode': '{mode}'.")
        return ToolSetup(subset, mode=mode, parallel=parallel)
    raise _choice_error(f"Invalid value for 'tool_choice.type': '{kind}'.")


def call_id(completion_id: str, choice: int, call: int) -> str:
    """A tool call's id, derived from its place so that a streamed completion and the stored
    copy of it name each call the same (completion ids are random, so these are unique)."""
    digest = hashlib.blake2b(f"{completion_id}/{choice}/{call}".encode(), digest_size=12)
    return "call_" + digest.hexdigest()


def message_tool_calls(
    calls: list[ParsedCall], completion_id: str, choice: int
) -> list[ChatCompletionMessageFunctionToolCall]:
    return [
        ChatCompletionMessageFunctionToolCall(
            id=call_id(completion_id, choice, index),
            type="function",
            function=Function(name=call.name, arguments=call.arguments),
        )
        for index, call in enumerate(calls)
    ]


class ToolDeltaMaker:
    """Turns parser events into Chat tool-call deltas (id/type/name only in the first one)."""

    def __init__(self, completion_id: str, choice: int) -> None:
        self.count = 0
        self.completion_id = completion_id
        self.choice = choice

    def deltas(self, events: list[ToolEvent]) -> list[ChoiceDeltaToolCall]:
        out: list[ChoiceDeltaToolCall] = []
        for event in events:
            if isinstance(event, CallStarted):
                self.count += 1
                out.append(
                    ChoiceDeltaToolCall(
                        index=event.index,
                        id=call_id(self.completion_id, self.choice, event.index),
                        type="function",
                        function=ChoiceDeltaToolCallFunction(name=event.name, arguments=""),
                    )
                )
            elif isinstance(event, ArgumentsPiece) and event.text:
                out.append(
                    ChoiceDeltaToolCall(
                        index=event.index,
                        function=ChoiceDeltaToolCallFunction(arguments=event.text),
                    )
                )
        return out
