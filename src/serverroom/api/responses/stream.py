"""One response run as the platform's stream events (§3.8), for every mode.

``run_events`` turns the engine's text events into SDK event objects with sequence numbers,
ending in ``response.completed`` / ``.incomplete`` / ``.failed`` after the response is stored.
Streaming serialises the events, the plain and background modes just keep the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent

from serverroom.api.responses.events import stream_event
from serverroom.api.responses.items import Item
from serverroom.api.responses.service import (
    ResponsePlan,
    build_output_items,
    dump,
    finish,
    logprob_entries,
    message_item,
    response_object,
    settle,
    usage_of,
    wants_logprobs,
)
from serverroom.api.responses.structured import tool_run_events
from serverroom.engine.textgen import TextDelta, TextDone, TextEvent, TokenInfo
from serverroom.errors import APIError
from serverroom.ids import new_id
from serverroom.sse import sse_event

logger = logging.getLogger("serverroom.responses")
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


@dataclass
class _Run:
    plan: ResponsePlan
    message_id: str = field(default_factory=lambda: new_id("msg_"))
    seq: int = 0
    text: str = ""
    done: TextDone | None = None
    infos: list[TokenInfo] = field(default_factory=list)
    pending: list[TokenInfo] = field(default_factory=list)
    tokens: int = 0  # tokens generated so far (billed if the run stops early)

    def event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        event = stream_event(kind, self.seq, **fields)
        self.seq += 1
        return event

    def lifecycle(self, kind: str, response: Response) -> ResponseStreamEvent:
        return self.event(kind, response=dump(response))

    def where(self) -> dict[str, Any]:
        return {"item_id": self.message_id, "output_index": 0, "content_index": 0}

    def part(self) -> dict[str, Any]:
        wanted = wants_logprobs(self.plan.request)
        logprobs = logprob_entries(self.infos, with_bytes=True) if wanted else []
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": logprobs}

    def logprobs(self, infos: list[TokenInfo]) -> list[Item]:
        return logprob_entries(infos, with_bytes=False)


def _final(run: _Run, error: APIError | None) -> tuple[Response, list[Item]]:
    plan = run.plan
    done = run.done
    cached = done.cached_tokens if done else 0
    output_tokens = done.completion_tokens if done else run.tokens  # as settled (billed)
    usage = usage_of(len(plan.prompt), cached, output_tokens)
    if error is not None:
        items = build_output_items(plan, run.message_id, run.text, "incomplete", run.infos)
        err = {"code": "server_error", "message": error.message}
        return response_object(plan, "failed", items, usage=usage, error=err), items
    cut = done is not None and done.finish_reason == "length"
    status = "incomplete" if cut else "completed"
    items = build_output_items(plan, run.message_id, run.text, status, run.infos)
    extra: dict[str, Any] = {"usage": usage}
    if cut:
        extra["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        extra["completed_at"] = int(time.time())
    return response_object(plan, status, items, **extra), items


async def _deltas(
    run: _Run, events: AsyncIterator[TextEvent]
) -> AsyncGenerator[ResponseStreamEvent]:
    async for event in events:
        if isinstance(event, TextDelta):
            run.tokens += len(event.token_ids)
            run.infos.extend(event.logprobs)
            run.pending.extend(event.logprobs)
            if event.text:
                run.text += event.text
                logprobs = run.logprobs(run.pending)
                run.pending = []
                yield run.event(
                    "response.output_text.delta", **run.where(), delta=event.text, logprobs=logprobs
                )
        elif isinstance(event, TextDone):
            run.done = event


async def run_events(
    plan: ResponsePlan, events: AsyncIterator[TextEvent]
) -> AsyncIterator[ResponseStreamEvent]:
    """Every event of one response, ending after it is stored. Closing it stops generation."""
    if plan.tools is not None:  # the output may be function calls (issue 5)
        async for tool_event in tool_run_events(plan, events):
            yield tool_event
        return
    run = _Run(plan)
    start = response_object(plan, "in_progress")
    yield run.lifecycle("response.created", start)
    yield run.lifecycle("response.in_progress", start)
    added = message_item(run.message_id, "", "in_progress")
    added["content"] = []
    yield run.event("response.output_item.added", output_index=0, item=added)
    yield run.event("response.content_part.added", **run.where(), part=run.part())
    error: APIError | None = None
    deltas = _deltas(run, events)
    try:
        async for delta in deltas:
            yield delta
    except APIError as exc:
        logger.warning("response %s failed: %s", plan.response_id, exc.message)
        error = exc
    finally:
        await deltas.aclose()
        await _close(events)
        done = run.done
        await settle(
            plan, done.cached_tokens if done else 0, done.completion_tokens if done else run.tokens
        )
    response, items = _final(run, error)
    logprobs = run.logprobs(run.infos)
    yield run.event("response.output_text.done", **run.where(), text=run.text, logprobs=logprobs)
    yield run.event("response.content_part.done", **run.where(), part=run.part())
    yield run.event("response.output_item.done", output_index=0, item=items[0])
    await finish(plan, response)
    yield run.lifecycle(f"response.{response.status}", response)


async def _close(events: AsyncIterator[Any]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()


async def final_response(events: AsyncIterator[ResponseStreamEvent]) -> Response:
    """Run a response to its end and return the final ``Response``."""
    last: ResponseStreamEvent | None = None
    async for event in events:
        last = event
    assert last is not None and last.type in TERMINAL
    response = getattr(last, "response", None)
    assert isinstance(response, Response)
    return response


async def sse_body(events: AsyncIterator[ResponseStreamEvent]) -> AsyncIterator[bytes]:
    """The events as SSE (``event:`` line + JSON data); closing it closes the run."""
    try:
        async for event in events:
            yield sse_event(dump(event), event=event.type)
    finally:
        await _close(events)
