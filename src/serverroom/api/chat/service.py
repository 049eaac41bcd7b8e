"""Chat Completions service: messages → prompt → engine → ``ChatCompletion`` or chunks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice, ChoiceLogprobs
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_chunk import ChoiceLogprobs as ChunkLogprobs
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.chat.chat_completion_token_logprob import ChatCompletionTokenLogprob, TopLogprob
from openai.types.completion_usage import (
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
)

from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.api.chat.structured import (
    ToolDeltaMaker,
    chat_format,
    chat_tools,
    message_tool_calls,
)
from serverroom.api.common import (
    SYSTEM_FINGERPRINT,
    admit_all,
    billed_if_abandoned,
    check_context,
    check_count,
    choice_seed,
    collect_text,
    gather_all,
    logit_bias_ids,
    sampling_params,
)
from serverroom.catalog import ModelEntry
from serverroom.constraints import (
    OutputPlan,
    TextPiece,
    ToolCallParser,
    ToolSetup,
    constrains,
    parse_tool_output,
    plan_output,
    render_tool_messages,
)
from serverroom.context import AppContext
from serverroom.engine.base import ChatMessage, Engine, SamplingParams, TokenConstraint
from serverroom.engine.textgen import TextDelta, TextDone, TextEvent, TokenInfo, generate_text
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id
from serverroom.metering import Ticket, Usage
from serverroom.principal import Principal
from serverroom.sse import DONE, sse_event


@dataclass
class ChatPlan:
    """Everything needed to run one chat request."""

    request: ChatCompletionRequest
    entry: ModelEntry
    engine: Engine
    prompt: list[int]
    params: list[SamplingParams]
    stop: list[str]
    completion_id: str
    created: int
    ticket: Ticket
    tools: ToolSetup | None = None  # set when the model may call tools
    output: OutputPlan | None = None  # the grammar constraining each choice
    priority: int = 0  # engine priority: 0 interactive, higher for Batch API lines


def to_chat_messages(request: ChatCompletionRequest) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for index, message in enumerate(request.messages):
        if isinstance(message.content, list):
            for part_index, part in enumerate(message.content):
                if part.type != "text":
                    raise InvalidRequestError(
                        f"Content type '{part.type}' is not supported by this model; only"
                        " text parts are.",
                        param=f"messages[{index}].content[{part_index}].type",
                        code="unsupported_content_type",
                    )
        role = "system" if message.role == "developer" else message.role
        extra: dict[str, Any] = {}
        if message.tool_calls:
            extra["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            extra["tool_call_id"] = message.tool_call_id
        out.append(ChatMessage(role=role, content=message.text(), extra=extra))
    return out


async def plan_chat(
    ctx: AppContext,
    request: ChatCompletionRequest,
    principal: Principal,
    *,
    batch: bool = False,
    priority: int = 0,
) -> ChatPlan:
    limits = ctx.settings.requests
    check_count(len(request.messages), limits.max_items, param="messages", what="messages")
    check_count(len(request.tools or []), limits.max_tools, param="tools", what="tools")
    entry = ctx.catalog.resolve(request.model)
    engine = await ctx.engines.get(entry)
    fmt = chat_format(request)
    tools = chat_tools(request)
    messages = render_tool_messages(to_chat_messages(request), tools)
    prompt = await asyncio.to_thread(engine.tokenize_chat, messages)  # long ones take seconds
    max_tokens = check_context(
        engine,
        len(prompt),
        request.output_limit(),
        param="messages",
        what="messages",
        limit_param=request.output_limit_param(),
        model_cap=entry.max_output_tokens,
        default=entry.default_max_output_tokens,
    )
    bias = logit_bias_ids(engine, request.logit_bias)
    top = (request.top_logprobs or 0) if request.logprobs else None
    n = request.n or 1
    admit_all(engine, n, param="n", what=f"n={n}")
    output = None
    constraints: list[TokenConstraint | None] = [None] * n
    if constrains(fmt, tools):  # grammar work runs off the event loop
        output = await asyncio.to_thread(plan_output, engine, fmt, tools)
        if output is not None:
            constraints = await asyncio.to_thread(
                lambda: [output.new_constraint() for _ in range(n)]
            )
    params = [
        sampling_params(
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=choice_seed(request.seed, i) if (request.seed is not None or n > 1) else None,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            logit_bias=bias,
            top_logprobs=top,
            constraint=constraints[i],
        )
        for i in range(n)
    ]
    ticket = await ctx.metering.admit(
        principal,
        entry,
        endpoint="/v1/chat/completions",
        prompt_tokens=len(prompt),
        max_output_tokens=max_tokens * n,
        batch=batch,
    )
    return ChatPlan(
        request=request,
        entry=entry,
        engine=engine,
        prompt=prompt,
        params=params,
        stop=request.stop_list(),
        completion_id=new_id("chatcmpl-", 12),
        created=int(time.time()),
        ticket=ticket,
        tools=tools if tools is not None and tools.active else None,
        output=output,
        priority=priority,
    )


def usage(prompt: int, cached: int, completion: int) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached, audio_tokens=0),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=0,
            audio_tokens=0,
            accepted_prediction_tokens=0,
            rejected_prediction_tokens=0,
        ),
    )


def chat_logprobs(infos: list[TokenInfo]) -> list[ChatCompletionTokenLogprob]:
    return [
        ChatCompletionTokenLogprob(
            token=info.token,
            logprob=info.logprob,
            bytes=info.bytes,
            top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=b) for t, lp, b in info.top],
        )
        for info in infos
    ]


async def complete_chat(plan: ChatPlan, request_id: str) -> ChatCompletion:
    def events(index: int) -> AsyncIterator[TextEvent]:
        params = plan.params[index]
        return generate_text(
            plan.engine,
            plan.prompt,
            params,
            plan.stop,
            request_id=request_id,
            priority=plan.priority,
        )

    counts = [0] * len(plan.params)
    async with billed_if_abandoned(plan.ticket, len(plan.prompt), counts):
        results = await gather_all(collect_text(events(i), counts, i) for i in range(len(counts)))
    choices = []
    for index, (done, infos) in enumerate(results):
        logprobs = None
        if plan.request.logprobs:
            logprobs = ChoiceLogprobs(content=chat_logprobs(infos), refusal=None)
        content, calls = parse_tool_output(done.text) if plan.tools else (done.text, [])
        message = ChatCompletionMessage(
            role="assistant", content=content, refusal=None, annotations=[]
        )
        finish: Literal["stop", "length", "tool_calls"] = done.finish_reason
        if calls:
            message.tool_calls = list(message_tool_calls(calls))
            finish = "tool_calls" if done.finish_reason == "stop" else done.finish_reason
        choices.append(
            Choice(index=index, finish_reason=finish, logprobs=logprobs, message=message)
        )
    prompt = len(plan.prompt)
    cached = max(done.cached_tokens for done, _ in results)
    completion = sum(done.completion_tokens for done, _ in results)
    await plan.ticket.settle(Usage(prompt, cached, completion))
    return ChatCompletion(
        id=plan.completion_id,
        object="chat.completion",
        created=plan.created,
        model=plan.entry.id,
        choices=choices,
        usage=usage(prompt, cached, completion),
        system_fingerprint=SYSTEM_FINGERPRINT,
        service_tier="default",
    )


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
            parser, maker = parsers.setdefault(index, (ToolCallParser(), ToolDeltaMaker()))
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


async def stream_chat(
    plan: ChatPlan, events: AsyncIterator[tuple[int, TextEvent]]
) -> AsyncIterator[bytes]:
    """SSE body: role chunk, content chunks, finish chunks, optional usage, ``[DONE]``."""
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
    try:
        async for chunk in _content_chunks(plan, events, include_usage, with_logprobs):
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
    yield DONE
