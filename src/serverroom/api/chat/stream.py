"""Chat Completions streaming: the choices' events as ``chat.completion.chunk`` SSE events.

``merge_choices`` runs every choice and interleaves their events; ``stream_chat`` renders them
and, as it goes, keeps each choice's end so that a stored completion (``store: true``) is the
same ``ChatCompletion`` a non-streaming request would have returned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_chunk import ChoiceLogprobs as ChunkLogprobs

from serverroom.api.chat.service import ChatPlan, build_completion, chat_logprobs, usage
from serverroom.api.chat.structured import ToolDeltaMaker
from serverroom.api.common import SYSTEM_FINGERPRINT
from serverroom.constraints import TextPiece, ToolCallParser
from serverroom.engine.textgen import TextDelta, TextDone, TextEvent, TokenInfo, generate_text
from serverroom.metering import Usage
from serverroom.sse import DONE, sse_event

_MARK = "@@serverroom-content@@"


class _ContentChunk:
    """A plain content chunk as bytes, byte-identical to the SDK-model path but without
    building and dumping three pydantic models per token: the chunk is rendered once with a
    marker as its content and split around it."""

    def __init__(self, plan: ChatPlan, index: int, with_usage: bool) -> None:
        choice = ChunkChoice(index=index, delta=ChoiceDelta(content=_MARK), finish_reason=None)
        sample = _chunk(plan, [choice], with_usage)
        self.head, _, self.tail = sample.partition(json.dumps(_MARK).encode())

    def __call__(self, text: str) -> bytes:
        return self.head + json.dumps(text, ensure_ascii=False).encode() + self.tail


def _chunk(plan: ChatPlan, choices: list[ChunkChoice], with_usage: bool) -> bytes:
    chunk = ChatCompletionChunk(
        id=plan.completion_id,
        object="chat.completion.chunk",
        created=plan.created,
        model=plan.entry.id,
        choices=choices,
        system_fingerprint=SYSTEM_FINGERPRINT,
        service_tier="default",
    )
    if with_usage:
        chunk.usage = None
    return sse_event(chunk.model_dump(mode="json", exclude_unset=True))


async def merge_choices(
    plan: ChatPlan, request_id: str, on_start: Callable[[], None] | None = None
) -> AsyncIterator[tuple[int, TextEvent]]:
    """Run every choice concurrently and interleave their events."""
    if len(plan.params) == 1:
        async for event in generate_text(
            plan.engine,
            plan.prompt,
            plan.params[0],
            plan.stop,
            request_id=request_id,
            on_start=on_start,
        ):
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, TextEvent] | BaseException] = asyncio.Queue()

    async def pump(index: int) -> None:
        try:
            async for event in generate_text(
                plan.engine,
                plan.prompt,
                plan.params[index],
                plan.stop,
                request_id=request_id,
                on_start=on_start,
            ):
                await queue.put((index, event))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(i)) for i in range(len(plan.params))]
    remaining = len(tasks)
    try:
        while remaining:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item[1], TextDone):
                remaining -= 1
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _content_chunks(
    plan: ChatPlan,
    events: AsyncIterator[tuple[int, TextEvent]],
    include_usage: bool,
    with_logprobs: bool,
) -> AsyncIterator[bytes | TextDone]:
    """Content and finish chunks; each choice's ``TextDone`` is passed up for usage."""
    parsers: dict[int, tuple[ToolCallParser, ToolDeltaMaker]] = {}
    plain: dict[int, _ContentChunk] = {}
    async for index, event in events:
        if isinstance(event, TextDelta) and plan.tools is not None:
            parser, maker = parsers.setdefault(
                index, (ToolCallParser(), ToolDeltaMaker(plan.completion_id, index))
            )
            found = parser.feed(event.text)
            deltas = maker.deltas(found)
            if deltas:
                choice = ChunkChoice(
                    index=index, delta=ChoiceDelta(tool_calls=deltas), finish_reason=None
                )
                yield _chunk(plan, [choice], include_usage)
            text = "".join(e.text for e in found if isinstance(e, TextPiece))
            if text:
                choice = ChunkChoice(
                    index=index, delta=ChoiceDelta(content=text), finish_reason=None
                )
                yield _chunk(plan, [choice], include_usage)
        elif isinstance(event, TextDelta) and not with_logprobs:
            if index not in plain:
                plain[index] = _ContentChunk(plan, index, include_usage)
            yield plain[index](event.text)
        elif isinstance(event, TextDelta):
            choice = ChunkChoice(
                index=index, delta=ChoiceDelta(content=event.text), finish_reason=None
            )
            if with_logprobs:
                choice.logprobs = ChunkLogprobs(content=chat_logprobs(event.logprobs), refusal=None)
            yield _chunk(plan, [choice], include_usage)
        else:
            yield event
            finish: Literal["stop", "length", "tool_calls"] = event.finish_reason
            if index in parsers:
                parser = parsers[index][0]
                if parser.pending_text():
                    delta = ChoiceDelta(content=parser.pending_text())
                    yield _chunk(plan, [ChunkChoice(index=index, delta=delta)], include_usage)
                if parser.calls and finish == "stop":
                    finish = "tool_calls"
            final = ChunkChoice(index=index, delta=ChoiceDelta(), finish_reason=finish)
            yield _chunk(plan, [final], include_usage)


class ChoiceRecord:
    """Each choice's end (and logprobs, when asked for) as a stream of events goes by."""

    def __init__(self, plan: ChatPlan) -> None:
        self.with_logprobs = bool(plan.request.logprobs)
        self.done: dict[int, TextDone] = {}
        self.infos: dict[int, list[TokenInfo]] = {index: [] for index in range(len(plan.params))}

    async def watch(
        self, events: AsyncIterator[tuple[int, TextEvent]]
    ) -> AsyncIterator[tuple[int, TextEvent]]:
        async for index, event in events:
            if isinstance(event, TextDone):
                self.done[index] = event
            elif self.with_logprobs:
                self.infos[index].extend(event.logprobs)
            yield index, event

    def results(self) -> list[tuple[TextDone, list[TokenInfo]]]:
        return [(self.done[index], self.infos[index]) for index in sorted(self.done)]


async def stream_chat(
    plan: ChatPlan,
    events: AsyncIterator[tuple[int, TextEvent]],
    on_complete: Callable[[ChatCompletion], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """SSE body: role chunk, content chunks, finish chunks, optional usage, ``[DONE]``.

    ``on_complete`` gets the finished completion (as a non-streaming request returns it)
    before ``[DONE]``; a stream that ends early (the client left) never reaches it.
    """
    opts = plan.request.stream_options
    include_usage = bool(opts and opts.include_usage)
    with_logprobs = bool(plan.request.logprobs)
    for index in range(len(plan.params)):
        role = ChunkChoice(
            index=index, delta=ChoiceDelta(role="assistant", content=""), finish_reason=None
        )
        if with_logprobs:
            role.logprobs = None
        yield _chunk(plan, [role], include_usage)
    cached = 0
    completion = 0
    record = ChoiceRecord(plan)
    try:
        chunks = _content_chunks(plan, record.watch(events), include_usage, with_logprobs)
        async for chunk in chunks:
            if isinstance(chunk, bytes):
                yield chunk
            else:
                cached = max(cached, chunk.cached_tokens)
                completion += chunk.completion_tokens
    finally:
        await plan.ticket.settle(Usage(len(plan.prompt), cached, completion))
    if include_usage:
        usage_chunk = ChatCompletionChunk(
            id=plan.completion_id,
            object="chat.completion.chunk",
            created=plan.created,
            model=plan.entry.id,
            choices=[],
            system_fingerprint=SYSTEM_FINGERPRINT,
            usage=usage(len(plan.prompt), cached, completion),
        )
        yield sse_event(usage_chunk.model_dump(mode="json", exclude_unset=True))
    if on_complete is not None:
        await on_complete(build_completion(plan, record.results()))
    yield DONE
