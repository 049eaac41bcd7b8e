"""Chat Completions streaming: the generation's results as ``chat.completion.chunk`` events.

``stream_chat`` renders the results and, as it goes, keeps each choice's end, so that a stored
completion (``store: true``) is the same ``ChatCompletion`` a non-streaming request returns.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import (
    Choice as ChunkChoice,
)
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_chunk import ChoiceLogprobs as ChunkLogprobs

from serverroom.api.chat.service import ChatPlan, build_completion, chat_logprobs
from serverroom.api.chat.structured import custom_names
from serverroom.generation import (
    CallArguments,
    CallOpened,
    ChoiceDone,
    Result,
    TextOut,
)
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
        **plan.stamp(),
        object="chat.completion.chunk",
        choices=choices,
        service_tier="default",
    )
    if with_usage:
        chunk.usage = None
    return sse_event(chunk.model_dump(mode="json", exclude_unset=True))


def _custom_delta(index: int, custom: dict[str, str], call_id: str | None = None) -> Any:
    """A custom tool call's delta, ``{"index", "id"?, "type": "custom", "custom": {...}}``
    (the SDK types chunk tool calls as functions only, so it is built unvalidated)."""
    fields: dict[str, Any] = {"index": index, "custom": custom}
    if call_id is not None:
        fields.update(id=call_id, type="custom")
    return ChoiceDeltaToolCall.model_construct(**fields)


class _Renderer:
    """One chunk per result: text, tool-call deltas, and each choice's finish."""

    def __init__(self, plan: ChatPlan) -> None:
        opts = plan.request.stream_options
        self.plan = plan
        self.with_usage = bool(opts and opts.include_usage)
        self.with_logprobs = bool(plan.request.logprobs)
        self.plain: dict[int, _ContentChunk] = {}
        self.custom = custom_names(plan.gen.tools)
        self.custom_calls: set[tuple[int, int]] = set()  # (choice, call) of custom tools

    def role(self, index: int) -> bytes:
        choice = ChunkChoice(
            index=index, delta=ChoiceDelta(role="assistant", content=""), finish_reason=None
        )
        if self.with_logprobs:
            choice.logprobs = None
        return self.chunk(choice)

    def chunk(self, choice: ChunkChoice) -> bytes:
        return _chunk(self.plan, [choice], self.with_usage)

    def render(self, result: Result) -> bytes | None:
        if isinstance(result, TextOut):
            return self.text(result)
        if isinstance(result, CallOpened) and result.name in self.custom:
            self.custom_calls.add((result.choice, result.call))
            call = _custom_delta(result.call, {"name": result.name, "input": ""}, result.call_id)
        elif (
            isinstance(result, CallArguments) and (result.choice, result.call) in self.custom_calls
        ):
            call = _custom_delta(result.call, {"input": result.text})
        elif isinstance(result, CallOpened):
            call = ChoiceDeltaToolCall(
                index=result.call,
                id=result.call_id,
                type="function",
                function=ChoiceDeltaToolCallFunction(name=result.name, arguments=""),
            )
        elif isinstance(result, CallArguments):
            call = ChoiceDeltaToolCall(
                index=result.call, function=ChoiceDeltaToolCallFunction(arguments=result.text)
            )
        elif isinstance(result, ChoiceDone):
            delta = ChoiceDelta()
            return self.chunk(
                ChunkChoice(index=result.choice, delta=delta, finish_reason=result.finish_reason)
            )
        else:
            return None  # a call's close: its arguments are all sent already
        delta = ChoiceDelta(tool_calls=[call])
        return self.chunk(ChunkChoice(index=result.choice, delta=delta, finish_reason=None))

    def text(self, result: TextOut) -> bytes | None:
        if not self.with_logprobs:
            if not result.text:
                return None
            if result.choice not in self.plain:
                self.plain[result.choice] = _ContentChunk(self.plan, result.choice, self.with_usage)
            return self.plain[result.choice](result.text)
        choice = ChunkChoice(
            index=result.choice, delta=ChoiceDelta(content=result.text), finish_reason=None
        )
        choice.logprobs = ChunkLogprobs(content=chat_logprobs(result.logprobs), refusal=None)
        return self.chunk(choice)


async def stream_chat(
    plan: ChatPlan,
    stream: AsyncIterator[Result],
    on_complete: Callable[[ChatCompletion], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """SSE body: role chunk, content chunks, finish chunks, optional usage, ``[DONE]``.

    ``on_complete`` gets the finished completion (as a non-streaming request returns it)
    before ``[DONE]``; a stream that ends early (the client left) never reaches it.
    """
    renderer = _Renderer(plan)
    for index in range(len(plan.gen.jobs)):
        yield renderer.role(index)
    ended: list[ChoiceDone] = []
    try:
        async for result in stream:
            if isinstance(result, ChoiceDone):
                ended.append(result)
            chunk = renderer.render(result)
            if chunk is not None:
                yield chunk
    finally:
        cached = max((done.cached_tokens for done in ended), default=0)
        await plan.ticket.settle(Usage(plan.gen.prompt_tokens, cached, sum(plan.gen.tokens)))
    ended.sort(key=lambda done: done.choice)
    completion = build_completion(plan, ended)
    if renderer.with_usage:
        usage_chunk = ChatCompletionChunk(
            **plan.stamp(),
            object="chat.completion.chunk",
            choices=[],
            usage=completion.usage,
        )
        yield sse_event(usage_chunk.model_dump(mode="json", exclude_unset=True))
    if on_complete is not None:
        await on_complete(completion)
    yield DONE
