"""Legacy Completions service: prompt(s) → engine → ``Completion`` or chunks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openai.types import Completion, CompletionChoice
from openai.types.completion_choice import Logprobs
from openai.types.completion_usage import CompletionUsage

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
from serverroom.api.completions.schemas import CompletionRequest
from serverroom.catalog import ModelEntry
from serverroom.context import AppContext
from serverroom.engine.base import Engine, SamplingParams
from serverroom.engine.textgen import TextDelta, TextDone, TokenInfo, generate_text
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id
from serverroom.metering import Ticket, Usage
from serverroom.principal import Principal
from serverroom.sse import DONE, sse_event


@dataclass
class Job:
    """One choice: which prompt, which sampling parameters, which output index."""

    index: int
    prompt: list[int]
    prompt_text: str
    params: SamplingParams


@dataclass
class CompletionPlan:
    request: CompletionRequest
    entry: ModelEntry
    engine: Engine
    jobs: list[Job]
    stop: list[str]
    completion_id: str
    created: int
    ticket: Ticket
    priority: int = 0  # engine priority: 0 interactive, higher for Batch API lines


def _prompt_tokens(engine: Engine, prompt: str | list[int], index: int) -> list[int]:
    if isinstance(prompt, str):
        return engine.tokenize(prompt, special=True)
    for token in prompt:
        if not 0 <= token < engine.vocab_size:
            raise InvalidRequestError(
                f"Invalid token id {token} in prompt.", param="prompt", code="invalid_value"
            )
    return list(prompt)


async def plan_completion(
    ctx: AppContext,
    request: CompletionRequest,
    principal: Principal,
    *,
    batch: bool = False,
    priority: int = 0,
) -> CompletionPlan:
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
    entry = ctx.catalog.resolve(request.model)
    engine = await ctx.engines.get(entry)
    prompts = request.prompts()
    limit = ctx.settings.requests.max_items
    check_count(len(prompts), limit, param="prompt", what="prompts")
    if not prompts:
        raise InvalidRequestError("The prompt must not be empty.", param="prompt")
    bias = logit_bias_ids(engine, request.logit_bias)
    n = request.n or 1
    jobs: list[Job] = []
    for p_index, prompt in enumerate(prompts):
        tokens = _prompt_tokens(engine, prompt, p_index)
        max_tokens = check_context(
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
        text = prompt if isinstance(prompt, str) else ""
        for i in range(n):
            params = sampling_params(
                max_tokens=max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                seed=choice_seed(request.seed, i) if (request.seed is not None or n > 1) else None,
                presence_penalty=request.presence_penalty,
                frequency_penalty=request.frequency_penalty,
                logit_bias=bias,
                top_logprobs=request.logprobs,
            )
            jobs.append(Job(p_index * n + i, tokens, text, params))
    admit_all(engine, len(jobs), param="prompt", what=f"{len(prompts)} prompts x n={n}")
    ticket = await ctx.metering.admit(
        principal,
        entry,
        endpoint="/v1/completions",
        prompt_tokens=sum(len(job.prompt) for job in jobs[::n]),
        max_output_tokens=sum(job.params.max_tokens for job in jobs),
        batch=batch,
    )
    return CompletionPlan(
        request=request,
        entry=entry,
        engine=engine,
        jobs=jobs,
        stop=request.stop_list(),
        completion_id=new_id("cmpl-", 12),
        created=int(time.time()),
        ticket=ticket,
        priority=priority,
    )


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


async def _run(
    plan: CompletionPlan, job: Job, request_id: str, counts: list[int], index: int
) -> tuple[TextDone, list[TokenInfo]]:
    if job.params.max_tokens == 0:
        return TextDone("length", "", len(job.prompt), 0, 0, []), []
    events = generate_text(
        plan.engine,
        job.prompt,
        job.params,
        plan.stop,
        request_id=request_id,
        priority=plan.priority,
    )
    return await collect_text(events, counts, index)


def _usage(plan: CompletionPlan, completion: int) -> CompletionUsage:
    n = plan.request.n or 1
    prompt = sum(len(job.prompt) for job in plan.jobs[::n])
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def complete(plan: CompletionPlan, request_id: str) -> Completion:
    counts = [0] * len(plan.jobs)
    async with billed_if_abandoned(plan.ticket, _usage(plan, 0).prompt_tokens, counts):
        runs = (_run(plan, job, request_id, counts, i) for i, job in enumerate(plan.jobs))
        results = await gather_all(runs)
    used = _usage(plan, sum(done.completion_tokens for done, _ in results))
    cached = max((done.cached_tokens for done, _ in results), default=0)
    await plan.ticket.settle(Usage(used.prompt_tokens, cached, used.completion_tokens))
    choices = []
    for job, (done, infos) in zip(plan.jobs, results, strict=True):
        prefix = job.prompt_text if plan.request.echo else ""
        logprobs = None
        if plan.request.logprobs is not None:
            logprobs = legacy_logprobs(infos, len(prefix))
        choices.append(
            CompletionChoice(
                index=job.index,
                text=prefix + done.text,
                finish_reason=done.finish_reason,
                logprobs=logprobs,
            )
        )
    return Completion(
        id=plan.completion_id,
        object="text_completion",
        created=plan.created,
        model=plan.entry.id,
        choices=choices,
        usage=used,
        system_fingerprint=SYSTEM_FINGERPRINT,
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
        id=plan.completion_id,
        object="text_completion",
        created=plan.created,
        model=plan.entry.id,
        choices=[choice],
        system_fingerprint=SYSTEM_FINGERPRINT,
    )
    return sse_event(chunk.model_dump(mode="json", exclude_unset=True))


async def job_events(
    plan: CompletionPlan, request_id: str
) -> AsyncIterator[tuple[Job, TextDelta | TextDone]]:
    """Each job's events in order (jobs run one after another on the stream)."""
    for job in plan.jobs:
        if job.params.max_tokens == 0:
            yield job, TextDone("length", "", len(job.prompt), 0, 0, [])
            continue
        async for event in generate_text(
            plan.engine, job.prompt, job.params, plan.stop, request_id=request_id
        ):
            yield job, event


async def stream_completion(
    plan: CompletionPlan, events: AsyncIterator[tuple[Job, TextDelta | TextDone]]
) -> AsyncIterator[bytes]:
    opts = plan.request.stream_options
    total = 0
    cached = 0
    try:
        async for chunk in _stream_chunks(plan, events):
            if isinstance(chunk, bytes):
                yield chunk
            else:
                total += chunk.completion_tokens
                cached = max(cached, chunk.cached_tokens)
    finally:
        used = _usage(plan, total)
        await plan.ticket.settle(Usage(used.prompt_tokens, cached, total))
    if opts and opts.include_usage:
        usage_chunk = Completion(
            id=plan.completion_id,
            object="text_completion",
            created=plan.created,
            model=plan.entry.id,
            choices=[],
            usage=_usage(plan, total),
            system_fingerprint=SYSTEM_FINGERPRINT,
        )
        yield sse_event(usage_chunk.model_dump(mode="json", exclude_unset=True))
    yield DONE


async def _stream_chunks(
    plan: CompletionPlan, events: AsyncIterator[tuple[Job, TextDelta | TextDone]]
) -> AsyncIterator[bytes | TextDone]:
    echoed: set[int] = set()
    async for job, event in events:
        if plan.request.echo and job.index not in echoed:
            echoed.add(job.index)
            yield _chunk(plan, _choice(job.index, job.prompt_text, None, None))
        if isinstance(event, TextDelta):
            logprobs = None
            if plan.request.logprobs is not None:
                logprobs = legacy_logprobs(event.logprobs, 0)
            yield _chunk(plan, _choice(job.index, event.text, None, logprobs))
        else:
            yield event
            yield _chunk(plan, _choice(job.index, "", event.finish_reason, None))
