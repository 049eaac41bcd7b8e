"""Chat Completions service: messages → prompt → engine → ``ChatCompletion`` or chunks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice, ChoiceLogprobs
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.chat.chat_completion_token_logprob import ChatCompletionTokenLogprob, TopLogprob
from openai.types.completion_usage import (
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
)

from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.api.chat.structured import (
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
    ToolSetup,
    constrains,
    parse_tool_output,
    plan_output,
    render_tool_messages,
)
from serverroom.context import AppContext
from serverroom.engine.base import ChatMessage, Engine, SamplingParams, TokenConstraint
from serverroom.engine.textgen import TextDone, TextEvent, TokenInfo, generate_text
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id
from serverroom.metering import Ticket, Usage
from serverroom.principal import Principal


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
    completion = build_completion(plan, results)
    await plan.ticket.settle(completion_usage(completion))
    return completion


def completion_usage(completion: ChatCompletion) -> Usage:
    """What a completion is billed for."""
    used = completion.usage
    assert used is not None and used.prompt_tokens_details is not None
    cached = used.prompt_tokens_details.cached_tokens or 0
    return Usage(used.prompt_tokens, cached, used.completion_tokens)


def build_completion(
    plan: ChatPlan, results: list[tuple[TextDone, list[TokenInfo]]]
) -> ChatCompletion:
    """The ``ChatCompletion`` of finished choices (each its end and its logprobs)."""
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
            message.tool_calls = list(message_tool_calls(calls, plan.completion_id, index))
            finish = "tool_calls" if done.finish_reason == "stop" else done.finish_reason
        choices.append(
            Choice(index=index, finish_reason=finish, logprobs=logprobs, message=message)
        )
    prompt = len(plan.prompt)
    cached = max(done.cached_tokens for done, _ in results)
    completion = sum(done.completion_tokens for done, _ in results)
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
