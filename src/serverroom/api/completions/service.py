"""Legacy Completions service: prompt(s) → engine → ``Completion`` or chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openai.types import Completion, CompletionChoice
from openai.types.completion_choice import Logprobs
from openai.types.completion_usage import CompletionUsage

from serverroom.api import common
from serverroom.api.common import ChoicesPlan
from serverroom.api.completions.schemas import CompletionRequest
from serverroom.api.upstream import chat_body, output_reserve, upstream_of
from serverroom.catalog import ModelEntry
from serverroom.context import Call
from serverroom.engine.base import Engine, SamplingParams
from serverroom.engine.textgen import TokenInfo
from serverroom.errors import InvalidRequestError
from serverroom.generation import (
    ChoiceDone,
    Generation,
    Job,
    Result,
    TextOut,
    UpstreamChat,
    fold,
    generate,
)
from serverroom.ids import new_id
from serverroom.metering import NullTicket, Usage
from serverroom.sse import DONE, sse_event


@dataclass(kw_only=True)
class CompletionPlan(ChoicesPlan):
    """One legacy Completions request: a job per prompt and choice (choice ``index`` is
    ``prompt_index * n + i``), each job's prompt text for ``echo``."""

    request: CompletionRequest
    prompt_texts: list[str]

    @classmethod
    def of(
        cls, entry: ModelEntry, gen: Generation, request: CompletionRequest, texts: list[str]
    ) -> CompletionPlan:
        """A plan not yet admitted (its ticket bills nothing)."""
        ident = new_id("cmpl-", 12)
        return cls(entry, gen, ident, NullTicket(), request=request, prompt_texts=texts)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens billed: each distinct prompt once (not once per choice)."""
        if self.gen.upstream is not None:
            return self.gen.prompt_tokens
        return sum(len(job.prompt) for job in self.gen.jobs[:: self.request.n or 1])


def _prompt_tokens(engine: Engine, prompt: str | list[int]) -> list[int]:
    if isinstance(prompt, str):
        return engine.tokenize(prompt, special=True)
    for token in prompt:
        if not 0 <= token < engine.vocab_size:
            raise InvalidRequestError(
                f"Invalid token id {token} in prompt.", param="prompt", code="invalid_value"
            )
    return list(prompt)


async def plan_completion(call: Call, request: CompletionRequest) -> CompletionPlan:
    if request.best_of is not None and request.best_of != (request.n or 1):
        raise InvalidRequestError(
            "best_of other than n is not supported.",
            param="best_of",
            code="unsupported_parameter",
        )
    if request.suffix:
        raise InvalidRequestError(
            "suffix is not supported by this model.",
            param="suffix",
            code="unsupported_parameter",
        )
    ctx = call.ctx
    entry = ctx.catalog.resolve(request.model)
    prompts = request.prompts()
    limit = ctx.settings.requests.max_items
    common.check_count(len(prompts), limit, param="prompt", what="prompts")
    if not prompts:
        raise InvalidRequestError("The prompt must not be empty.", param="prompt")
    if entry.upstream is not None:
        return await _plan_upstream(call, request, entry, len(prompts))
    engine = await ctx.engines.get(entry)
    bias = common.logit_bias_ids(engine, request.logit_bias)
    n = request.n or 1
    jobs: list[Job] = []
    texts: list[str] = []
    for prompt in prompts:
        tokens = _prompt_tokens(engine, prompt)
        max_tokens = common.check_context(
            engine,
            len(tokens),
            request.max_tokens or None,
            param="prompt",
            what="prompt",
            model_cap=entry.max_output_tokens,
            default=entry.default_max_output_tokens,
        )
        if request.max_tokens == 0:
            max_tokens = 0
        for i in range(n):
            params = common.choice_params(
                request, i, max_tokens=max_tokens, logit_bias=bias, top_logprobs=request.logprobs
            )
            jobs.append(Job(tokens, params))
            texts.append(prompt if isinstance(prompt, str) else "")
    common.admit_all(engine, len(jobs), param="prompt", what=f"{len(prompts)} prompts x n={n}")
    gen = Generation(engine, jobs, stop=request.stop_list(), priority=call.priority)
    reserve = sum(job.params.max_tokens for job in jobs)
    return await _admitted(call, CompletionPlan.of(entry, gen, request, texts), reserve)


async def _plan_upstream(
    call: Call, request: CompletionRequest, entry: ModelEntry, prompts: int
) -> CompletionPlan:
    """An upstream model's plan: the request passed on to its legacy Completions (which
    echoes, when asked, itself), admitted on an estimate of its size."""
    assert entry.upstream is not None
    fields = request.model_dump(mode="json", exclude_unset=True)
    limit = request.max_tokens or entry.default_max_output_tokens
    if limit is not None:
        fields["max_tokens"] = limit
    body = chat_body(fields, entry.upstream.model)
    text = json.dumps(fields.get("prompt"), ensure_ascii=False)
    chat = UpstreamChat(
        upstream_of(call.ctx, entry), body, None, len(text) // 4 + 1, path="/completions"
    )
    n = request.n or 1
    jobs = [Job([], SamplingParams(max_tokens=limit or 0))] * (prompts * n)
    gen = Generation(None, jobs, priority=call.priority, upstream=chat)
    echoed = [""] * len(jobs)  # the upstream echoes the prompts itself
    plan = CompletionPlan.of(entry, gen, request, echoed)
    return await _admitted(call, plan, output_reserve(entry, limit) * len(jobs))


async def _admitted(call: Call, plan: CompletionPlan, max_output_tokens: int) -> CompletionPlan:
    """The plan with the ticket its admission gave (limits checked, tokens reserved)."""
    plan.ticket = await call.admit(
        plan.entry,
        "/v1/completions",
        prompt_tokens=plan.prompt_tokens,
        max_output_tokens=max_output_tokens,
    )
    return plan


def legacy_logprobs(infos: list[TokenInfo], offset: int) -> Logprobs:
    offsets = []
    for info in infos:
        offsets.append(offset)
        offset += len(info.token)
    return Logprobs(
        tokens=[i.token for i in infos],
        token_logprobs=[i.logprob for i in infos],
        top_logprobs=[{t: lp for t, lp, _ in i.top} for i in infos],
        text_offset=offsets,
    )


def _usage(plan: CompletionPlan, completion: int) -> CompletionUsage:
    prompt = plan.prompt_tokens
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def complete(plan: CompletionPlan, request_id: str) -> Completion:
    """The non-streaming answer: the fold of the generation's results."""
    async with common.billed_if_abandoned(plan.ticket, plan.prompt_tokens, plan.gen.tokens):
        ended = await fold(generate(plan.gen, request_id))
    used = _usage(plan, sum(done.completion_tokens for done in ended))
    cached = max((done.cached_tokens for done in ended), default=0)
    await plan.ticket.settle(Usage(used.prompt_tokens, cached, used.completion_tokens))
    choices = []
    for done in ended:
        prefix = plan.prompt_texts[done.choice] if plan.request.echo else ""
        logprobs = None
        if plan.request.logprobs is not None:
            logprobs = legacy_logprobs(done.logprobs, len(prefix))
        finish = "length" if done.finish_reason == "length" else "stop"
        choices.append(
            CompletionChoice(
                index=done.choice,
                text=prefix + (done.text or ""),
                finish_reason=finish,
                logprobs=logprobs,
            )
        )
    return Completion(
        **plan.stamp(),
        object="text_completion",
        choices=choices,
        usage=used,
    )


def _choice(
    index: int, text: str, finish_reason: str | None, logprobs: Logprobs | None
) -> CompletionChoice:
    """A stream chunk's choice (``finish_reason`` is null until the last chunk)."""
    fields: dict[str, Any] = {
        "index": index,
        "text": text,
        "finish_reason": finish_reason,
        "logprobs": logprobs,
    }
    return CompletionChoice.model_construct(**fields)


def _chunk(plan: CompletionPlan, choice: CompletionChoice) -> bytes:
    chunk = Completion(
        **plan.stamp(),
        object="text_completion",
        choices=[choice],
    )
    return sse_event(chunk.model_dump(mode="json", exclude_unset=True))


async def stream_completion(
    plan: CompletionPlan, stream: AsyncIterator[Result]
) -> AsyncIterator[bytes]:
    """SSE body: each choice's echo (when asked), text chunks, finish chunk; usage; ``[DONE]``."""
    opts = plan.request.stream_options
    cached = 0
    try:
        async for chunk in _stream_chunks(plan, stream):
            if isinstance(chunk, bytes):
                yield chunk
            else:
                cached = max(cached, chunk.cached_tokens)
    finally:
        await plan.ticket.settle(Usage(plan.prompt_tokens, cached, sum(plan.gen.tokens)))
    if opts and opts.include_usage:
        usage_chunk = Completion(
            **plan.stamp(),
            object="text_completion",
            choices=[],
            usage=_usage(plan, sum(plan.gen.tokens)),
        )
        yield sse_event(usage_chunk.model_dump(mode="json", exclude_unset=True))
    yield DONE


async def _stream_chunks(
    plan: CompletionPlan, stream: AsyncIterator[Result]
) -> AsyncIterator[bytes | ChoiceDone]:
    echoed: set[int] = set()
    with_logprobs = plan.request.logprobs is not None
    async for result in stream:
        index = result.choice
        if plan.request.echo and index not in echoed:
            echoed.add(index)
            yield _chunk(plan, _choice(index, plan.prompt_texts[index], None, None))
        if isinstance(result, TextOut):
            logprobs = legacy_logprobs(result.logprobs, 0) if with_logprobs else None
            yield _chunk(plan, _choice(index, result.text, None, logprobs))
        elif isinstance(result, ChoiceDone):
            yield result
            finish = "length" if result.finish_reason == "length" else "stop"
            yield _chunk(plan, _choice(index, "", finish, None))
