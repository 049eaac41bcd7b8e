"""Responses glue for structured outputs and function calling (issue 5).

``text.format`` and the flat ``tools`` / ``tool_choice`` become a constraint (see
``serverroom.constraints``); when tools are active, :func:`tool_run_events` replaces the plain
text event flow so calls come out as ``function_call`` items with
``response.function_call_arguments.delta`` / ``.done`` events.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from openai.types.responses import ResponseStreamEvent

from serverroom.api.responses.events import stream_event
from serverroom.api.responses.items import Item, render_items
from serverroom.constraints import (
    ArgumentsPiece,
    CallDone,
    CallStarted,
    FormatSpec,
    TextPiece,
    ToolCallParser,
    ToolEvent,
    ToolSetup,
    ToolSpec,
    check_tools,
    parse_format,
)
from serverroom.constraints.schema import strict_by_default
from serverroom.engine.textgen import TextDelta, TextDone, TextEvent
from serverroom.errors import APIError, InvalidRequestError
from serverroom.ids import new_id

if TYPE_CHECKING:
    from serverroom.api.responses.schemas import ResponseContextFields
    from serverroom.api.responses.service import ResponsePlan


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


def _choice_error(message: str) -> InvalidRequestError:
    return InvalidRequestError(message, param="tool_choice", code="invalid_value")


def response_tools(request: ResponseContextFields) -> ToolSetup | None:
    """Function tools (flat form); other tool types are left to their own features."""
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
    choice = request.tool_choice
    if not specs:
        return None
    check_tools(specs, param_prefix="tools[{index}].parameters")
    parallel = request.parallel_tool_calls is not False
    if choice is None or choice in ("auto", "none", "required"):
        return ToolSetup(specs, mode=choice or "auto", parallel=parallel)  # type: ignore[arg-type]
    if not isinstance(choice, dict):
        raise _choice_error(f"Invalid value for 'tool_choice': '{choice}'.")
    names = {s.name for s in specs}
    if choice.get("type") == "function":
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
    return None  # hosted-tool choices belong to other features


class _ToolRun:
    def __init__(self, plan: ResponsePlan) -> None:
        self.plan = plan
        self.seq = 0
        self.items: list[Item] = []
        self.message: Item | None = None
        self.calls: dict[int, Item] = {}  # parser call index → item

    def event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        event = stream_event(kind, self.seq, **fields)
        self.seq += 1
        return event

    def text(self, piece: str) -> list[ResponseStreamEvent]:
        out = []
        if self.message is None:
            self.message = {
                "type": "message",
                "id": new_id("msg_"),
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            self.items.append(self.message)
            out.append(
                self.event(
                    "response.output_item.added",
                    output_index=len(self.items) - 1,
                    item=dict(self.message),
                )
            )
            self.message["content"] = [
                {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ]
            out.append(
                self.event(
                    "response.content_part.added", **self._where(), part=self.message["content"][0]
                )
            )
        self.message["content"][0]["text"] += piece
        out.append(
            self.event("response.output_text.delta", **self._where(), delta=piece, logprobs=[])
        )
        return out

    def _where(self) -> dict[str, Any]:
        assert self.message is not None
        index = self.items.index(self.message)
        return {"item_id": self.message["id"], "output_index": index, "content_index": 0}

    def tool(self, event: ToolEvent) -> list[ResponseStreamEvent]:
        if isinstance(event, TextPiece):
            return self.text(event.text)
        if isinstance(event, CallStarted):
            item: Item = {
                "type": "function_call",
                "id": new_id("fc_"),
                "call_id": new_id("call_", 12),
                "name": event.name,
                "arguments": "",
                "status": "in_progress",
            }
            self.calls[event.index] = item
            self.items.append(item)
            return [
                self.event(
                    "response.output_item.added", output_index=len(self.items) - 1, item=dict(item)
                )
            ]
        item = self.calls[event.index]
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        if isinstance(event, ArgumentsPiece):
            item["arguments"] += event.text
            return [self.event("response.function_call_arguments.delta", **where, delta=event.text)]
        assert isinstance(event, CallDone)
        return self.close_call(item, "completed", event.arguments)

    def close_call(self, item: Item, status: str, arguments: str) -> list[ResponseStreamEvent]:
        item["arguments"] = arguments
        item["status"] = status
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [
            self.event("response.function_call_arguments.done", **where, arguments=arguments),
            self.event(
                "response.output_item.done", output_index=where["output_index"], item=dict(item)
            ),
        ]

    def close(self, status: str) -> list[ResponseStreamEvent]:
        out = []
        for item in self.calls.values():
            if item["status"] == "in_progress":
                out += self.close_call(item, "incomplete", item["arguments"])
        if self.message is None and not self.calls:
            out += self.text("")
        if self.message is not None:
            where = self._where()
            part = self.message["content"][0]
            self.message["status"] = status
            out.append(
                self.event("response.output_text.done", **where, text=part["text"], logprobs=[])
            )
            out.append(self.event("response.content_part.done", **where, part=part))
            out.append(
                self.event(
                    "response.output_item.done",
                    output_index=where["output_index"],
                    item=self.message,
                )
            )
        return out


async def tool_run_events(
    plan: ResponsePlan, events: AsyncIterator[TextEvent]
) -> AsyncIterator[ResponseStreamEvent]:
    """The event flow of a response whose output may be function calls."""
    from serverroom.api.responses.service import dump, finish, response_object, settle, usage_of

    run = _ToolRun(plan)
    start = response_object(plan, "in_progress")
    yield run.event("response.created", response=dump(start))
    yield run.event("response.in_progress", response=dump(start))
    parser = ToolCallParser()
    done: TextDone | None = None
    tokens = 0
    error: APIError | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                tokens += len(event.token_ids)
                for found in parser.feed(event.text):
                    for out in run.tool(found):
                        yield out
            elif isinstance(event, TextDone):
                done = event
    except APIError as exc:
        error = exc
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
        await settle(
            plan, done.cached_tokens if done else 0, done.completion_tokens if done else tokens
        )
    if parser.pending_text():
        for out in run.text(parser.pending_text()):
            yield out
    cut = done is not None and done.finish_reason == "length"
    status = "failed" if error else "incomplete" if cut else "completed"
    for out in run.close("incomplete" if status != "completed" else "completed"):
        yield out
    usage = usage_of(
        len(plan.prompt),
        done.cached_tokens if done else 0,
        done.completion_tokens if done else tokens,
    )
    extra: dict[str, Any] = {"usage": usage}
    if error is not None:
        extra["error"] = {"code": "server_error", "message": error.message}
    elif cut:
        extra["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        extra["completed_at"] = int(time.time())
    response = response_object(plan, status, run.items, **extra)
    await finish(plan, response)
    yield run.event(f"response.{status}", response=dump(response))
