"""Chat Completions service: messages → prompt → engine → ``ChatCompletion`` or chunks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice, ChoiceLogprobs
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.chat.chat_completion_message_custom_tool_call import (
    ChatCompletionMessageCustomToolCall,
    Custom,
)
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)
from openai.types.chat.chat_completion_token_logprob import ChatCompletionTokenLogprob, TopLogprob
from openai.types.completion_usage import (
    CompletionTokensDetails,
    CompletionUsage,
    PromptTokensDetails,
)

from serverroom.api.chat.images import Images, chat_images, message_content
from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.api.chat.structured import (
    chat_format,
    chat_tools,
    custom_names,
)
from serverroom.api.common import (
    ChoicesPlan,
    admit_all,
    billed_if_abandoned,
    check_context,
    check_count,
    choice_params,
    logit_bias_ids,
)
from serverroom.api.image_data import encoding_turn
from serverroom.api.images import takes_images
from serverroom.api.reasoning import check_parameters, thinking_for
from serverroom.api.upstream import output_reserve, upstream_chat
from serverroom.catalog import ModelEntry
from serverroom.constraints import (
    constrains,
    plan_output,
    render_tool_messages,
)
from serverroom.context import Call
from serverroom.engine.base import ChatMessage, SamplingParams, TokenConstraint
from serverroom.engine.textgen import TokenInfo
from serverroom.generation import ChoiceDone, Generation, Job, fold, generate
from serverroom.ids import new_id
from serverroom.metering import Usage


@dataclass(kw_only=True)
class ChatPlan(ChoicesPlan):
    """Everything needed to run one chat request: ``gen`` has a job per choice, all on the
    same prompt."""

    request: ChatCompletionRequest


async def _plan_upstream(call: Call, request: ChatCompletionRequest, entry: ModelEntry) -> ChatPlan:
    """An upstream model's plan: the request passed on (the upstream applies its template,
    tools and ``response_format``), admitted on an estimate of its size."""
    fields = request.model_dump(mode="json", exclude_unset=True)
    limit = request.output_limit() or entry.default_max_output_tokens
    fields.pop("max_completion_tokens", None)
    if limit is not None:
        fields["max_tokens"] = limit  # the name every OpenAI-compatible server reads
    chat = upstream_chat(call.ctx, entry, fields)
    n = request.n or 1
    ticket = await call.admit(
        entry,
        "/v1/chat/completions",
        prompt_tokens=chat.prompt_tokens,
        max_output_tokens=output_reserve(entry, limit) * n,
    )
    completion_id = new_id("chatcmpl-", 12)
    jobs = [Job([], SamplingParams(max_tokens=limit or 0))] * n
    thinking = thinking_for(entry, request.reasoning_effort)
    gen = Generation(
        None, jobs, call_ids=completion_id, priority=call.priority, upstream=chat, thinking=thinking
    )
    return ChatPlan(entry, gen, completion_id, ticket, request=request)


def to_chat_messages(
    request: ChatCompletionRequest, images: Images | None = None
) -> list[ChatMessage]:
    """The request's messages for a template; ``images``: a vision model's, by part."""
    out: list[ChatMessage] = []
    for index, message in enumerate(request.messages):
        text, placed = message_content(message, index, images)
        role = "system" if message.role == "developer" else message.role
        extra: dict[str, Any] = {}
        if message.tool_calls:
            extra["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            extra["tool_call_id"] = message.tool_call_id
        out.append(ChatMessage(role=role, content=text, extra=extra, images=placed))
    return out


async def plan_chat(call: Call, request: ChatCompletionRequest) -> ChatPlan:
    ctx = call.ctx
    limits = ctx.settings.requests
    check_count(len(request.messages), limits.max_items, param="messages", what="messages")
    check_count(len(request.tools or []), limits.max_tools, param="tools", what="tools")
    entry = ctx.catalog.resolve(request.model)
    check_parameters(
        entry,
        temperature=request.temperature,
        top_p=request.top_p,
        effort=request.reasoning_effort,
        effort_param="reasoning_effort",
        max_tokens=request.max_tokens,
    )
    if entry.upstream is not None:
        if entry.vision is False:
            to_chat_messages(request)  # text parts only: images are refused as for local models
        return await _plan_upstream(call, request, entry)
    engine = await ctx.engines.get(entry)
    fmt = chat_format(request)
    tools = chat_tools(request)
    images = await chat_images(ctx, request) if takes_images(entry) else None
    chat = to_chat_messages(request, images)
    tools = tools.after(chat) if tools is not None else None
    messages = render_tool_messages(chat, tools)
    async with encoding_turn(ctx, bool(images)):  # long prompts and images take seconds
        prompt = await asyncio.to_thread(engine.tokenize_chat, messages)
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
        choice_params(
            request,
            i,
            max_tokens=max_tokens,
            logit_bias=bias,
            top_logprobs=top,
            constraint=constraints[i],
        )
        for i in range(n)
    ]
    ticket = await call.admit(
        entry, "/v1/chat/completions", prompt_tokens=len(prompt), max_output_tokens=max_tokens * n
    )
    completion_id = new_id("chatcmpl-", 12)
    gen = Generation(
        engine,
        [Job(prompt, p) for p in params],
        stop=request.stop_list(),
        tools=tools if tools is not None and tools.active else None,
        call_ids=completion_id,
        priority=call.priority,
        thinking=thinking_for(entry, request.reasoning_effort),
    )
    return ChatPlan(entry, gen, completion_id, ticket, request=request)


def usage(prompt: int, cached: int, completion: int, reasoning: int = 0) -> CompletionUsage:
    """Chat usage; ``reasoning`` of the ``completion`` tokens were thinking."""
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached, audio_tokens=0),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=reasoning,
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
    """The non-streaming answer: the fold of the generation's results."""
    async with billed_if_abandoned(plan.ticket, plan.gen.prompt_tokens, plan.gen.tokens):
        ended = await fold(generate(plan.gen, request_id))
    completion = build_completion(plan, ended)
    await plan.ticket.settle(completion_usage(completion))
    return completion


def completion_usage(completion: ChatCompletion) -> Usage:
    """What a completion is billed for."""
    used = completion.usage
    assert used is not None and used.prompt_tokens_details is not None
    cached = used.prompt_tokens_details.cached_tokens or 0
    return Usage(used.prompt_tokens, cached, used.completion_tokens)


def build_completion(plan: ChatPlan, ended: list[ChoiceDone]) -> ChatCompletion:
    """The ``ChatCompletion`` of finished choices."""
    choices = []
    for done in ended:
        logprobs = None
        if plan.request.logprobs:
            logprobs = ChoiceLogprobs(content=chat_logprobs(done.logprobs), refusal=None)
        message = ChatCompletionMessage(
            role="assistant", content=done.text, refusal=None, annotations=[]
        )
        if done.calls:
            custom = custom_names(plan.gen.tools)
            message.tool_calls = [
                ChatCompletionMessageCustomToolCall(
                    id=call.call_id,
                    type="custom",
                    custom=Custom(name=call.name, input=call.arguments),
                )
                if call.name in custom
                else ChatCompletionMessageFunctionToolCall(
                    id=call.call_id,
                    type="function",
                    function=Function(name=call.name, arguments=call.arguments),
                )
                for call in done.calls
            ]
        choices.append(
            Choice(
                index=done.choice,
                finish_reason=done.finish_reason,
                logprobs=logprobs,
                message=message,
            )
        )
    cached = max((done.cached_tokens for done in ended), default=0)
    completion = sum(done.completion_tokens for done in ended)
    reasoning = sum(done.reasoning_tokens for done in ended)
    return ChatCompletion(
        **plan.stamp(),
        object="chat.completion",
        choices=choices,
        usage=usage(plan.gen.prompt_tokens, cached, completion, reasoning),
        service_tier="default",
    )
