"""Re-streaming a stored response: ``GET /v1/responses/{id}?stream=true&starting_after=N``.

Background runs write their events to an in-memory ``EventLog`` (kept for the most recent
runs), which a reader follows live. A response with no log (not a background one, or one from
before a restart) is replayed from its stored body as one synthetic event sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from serverroom.api.items import Item, item_text
from serverroom.context import AppContext

KEEP_FINISHED = 64


@dataclass
class EventLog:
    """The events of one background run so far; readers wait for more until it finishes."""

    events: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._notify()

    def finish(self) -> None:
        self.finished = True
        self._notify()

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def follow(self, after: int) -> AsyncIterator[dict[str, Any]]:
        """Events with ``sequence_number > after``, live until the run finishes."""
        index = 0
        while True:
            wake = self._wake
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if event["sequence_number"] > after:
                    yield event
            if self.finished:
                return
            await wake.wait()


def open_log(ctx: AppContext, response_id: str) -> EventLog:
    """A new log for a background run (older finished logs are dropped)."""
    logs = ctx.response_logs
    finished = [key for key, log in logs.items() if log.finished]
    for key in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
        del logs[key]
    log = logs[response_id] = EventLog()
    return log


def find_log(ctx: AppContext, response_id: str) -> EventLog | None:
    return ctx.response_logs.get(response_id)


def _reasoning_events(index: int, item: Item) -> list[dict[str, Any]]:
    """A reasoning item's events, with its summary parts (``run_reasoning``'s order)."""
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "summary": []},
        }
    ]
    for number, part in enumerate(item.get("summary") or []):
        where = {"item_id": item["id"], "output_index": index, "summary_index": number}
        text = str(part.get("text", ""))
        events += [
            {
                "type": "response.reasoning_summary_part.added",
                **where,
                "part": {**part, "text": ""},
            },
            {"type": "response.reasoning_summary_text.delta", **where, "delta": text},
            {"type": "response.reasoning_summary_text.done", **where, "text": text},
            {"type": "response.reasoning_summary_part.done", **where, "part": part},
        ]
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _item_events(index: int, item: Item) -> list[dict[str, Any]]:
    if item.get("type") == "reasoning":
        return _reasoning_events(index, item)
    if item.get("type") != "message":
        started = {**item, "status": "in_progress"}
        return [
            {"type": "response.output_item.added", "output_index": index, "item": started},
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
    text = item_text(item)
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    added = {**item, "status": "in_progress", "content": []}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": added},
        {"type": "response.content_part.added", **where, "part": part},
        {"type": "response.output_text.delta", **where, "delta": text, "logprobs": []},
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def synthetic_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored response as the events a stream of it would have sent."""
    start = {**body, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    status = body.get("status")
    if status in ("completed", "incomplete", "failed"):
        for index, item in enumerate(body.get("output") or []):
            events.extend(_item_events(index, item))
        events.append({"type": f"response.{status}", "response": body})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]
