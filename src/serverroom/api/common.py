"""Helpers the generation services share: the common part of Chat and legacy Completions
plans, prompt checks, sampling parameters, priming a generation's results, usage."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from serverroom.api.schemas import SamplingFields
from serverroom.catalog import ModelEntry
from serverroom.engine.base import Engine, SamplingParams, TokenConstraint
from serverroom.engine.slots import overloaded
from serverroom.errors import ContextLengthExceededError, InvalidRequestError
from serverroom.generation import Generation, Result, generate
from serverroom.metering import Ticket, Usage
from serverroom.sse import primed

T = TypeVar("T")

SYSTEM_FINGERPRINT = "fp_serverroom"


@dataclass
class ChoicesPlan:
    """The part of a Chat or legacy Completions plan that both share: the generation of its
    choices, its admission ticket, and what identifies its reply (``stamp``)."""

    entry: ModelEntry
    gen: Generation
    completion_id: str
    ticket: Ticket
    created: int = field(default_factory=lambda: int(time.time()))

    def stamp(self) -> dict[str, Any]:
        """The fields every object and chunk of the reply carries: id, time, model."""
        return {
            "id": self.completion_id,
            "created": self.created,
            "model": self.entry.id,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }


def check_context(
    engine: Engine,
    prompt_tokens: int,
    max_tokens: int | None,
    *,
    param: str,
    what: str,
    limit_param: str = "max_tokens",
    model_cap: int | None = None,
    default: int | None = None,
) -> int:
    """Validate prompt + output against the context window; return the output budget.

    ``model_cap`` is the model's own output limit (a larger request is a 400, as on the
    platform). With no ``max_tokens`` the budget is the model's ``default`` output limit, but
    at most what remains of the context, the cap and half the window, so one runaway reply
    cannot fill a conversation's context.
    """
    limit = engine.context_length
    if prompt_tokens >= limit:
        raise ContextLengthExceededError(
            f"This model's maximum context length is {limit} tokens. However, your {what}"
            f" resulted in {prompt_tokens} tokens. Please reduce the length of the {what}.",
            param=param,
        )
    budget = limit - prompt_tokens
    if max_tokens is None:
        return min(budget, max(1, limit // 2), model_cap or budget, default or budget)
    if model_cap is not None and max_tokens > model_cap:
        raise InvalidRequestError(
            f"{limit_param} is too large: {max_tokens}. This model supports at most"
            f" {model_cap} completion tokens, whereas you provided {max_tokens}.",
            param=limit_param,
            code="invalid_value",
        )
    if max_tokens > budget:
        raise ContextLengthExceededError(
            f"This model's maximum context length is {limit} tokens. However, you requested"
            f" {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the {what},"
            f" {max_tokens} in the completion). Please reduce the length of the {what} or"
            " completion.",
            param=param,
        )
    return max_tokens


def logit_bias_ids(engine: Engine, bias: dict[str, float] | None) -> dict[int, float]:
    out: dict[int, float] = {}
    for key, value in (bias or {}).items():
        token = int(key)
        if not 0 <= token < engine.vocab_size:
            raise InvalidRequestError(
                f"Invalid key in 'logit_bias': {key} is not a valid token id for this model.",
                param="logit_bias",
                code="invalid_value",
            )
        out[token] = value
    return out


def sampling_params(
    *,
    max_tokens: int,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    presence_penalty: float | None = None,
    frequency_penalty: float | None = None,
    logit_bias: dict[int, float] | None = None,
    top_logprobs: int | None = None,
    constraint: TokenConstraint | None = None,
) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        seed=seed,
        presence_penalty=presence_penalty or 0.0,
        frequency_penalty=frequency_penalty or 0.0,
        logit_bias=logit_bias or {},
        top_logprobs=top_logprobs,
        constraint=constraint,
    )


def choice_seed(seed: int | None, index: int) -> int:
    """The seed for choice ``index`` (n > 1): distinct per choice, reproducible per request."""
    if seed is None:
        return secrets.randbits(31)
    return (seed + index * 7919) & 0x7FFFFFFF


def choice_params(
    request: SamplingFields,
    index: int,
    *,
    max_tokens: int,
    logit_bias: dict[int, float] | None,
    top_logprobs: int | None,
    constraint: TokenConstraint | None = None,
) -> SamplingParams:
    """Choice ``index``'s sampling parameters for a Chat or legacy Completions request (with
    ``n > 1`` every choice gets its own seed, derived from the request's when it has one)."""
    n = request.n or 1
    return sampling_params(
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=choice_seed(request.seed, index) if (request.seed is not None or n > 1) else None,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        logit_bias=logit_bias,
        top_logprobs=top_logprobs,
        constraint=constraint,
    )


def check_count(count: int, limit: int, *, param: str, what: str) -> None:
    """A request with more ``what`` than the server's limit is a 400 naming the limit, before
    anything is templated or tokenized."""
    if count > limit:
        raise InvalidRequestError(
            f"Too many {what}: {count}. This server accepts at most {limit} per request.",
            param=param,
            code="array_above_max_length",
        )


def admit_all(engine: Engine, count: int, *, param: str, what: str) -> None:
    """A request of ``count`` generations is admitted whole or not at all: more than the engine
    ever holds is a 400 naming the limit (a retry cannot help), more than it has room for now
    a 503 the SDK retries. Checked before the first generation starts."""
    if count > engine.capacity:
        raise InvalidRequestError(
            f"This request asks for {count} generations ({what}), but this server runs at most"
            f" {engine.capacity} at once (engine.slots + engine.max_queue). Send fewer per"
            " request.",
            param=param,
            code="invalid_value",
        )
    if count > 1 and count > engine.room():
        raise overloaded()


async def primed_results(gen: Generation, request_id: str) -> AsyncIterator[Result]:
    """The generation's results, once the engine has admitted the request: what fails before
    (admission, the prompt) is raised here, as an HTTP error, while a stream's headers can go
    out before the prompt is computed, as the platform's do."""
    started = asyncio.Event()
    return await primed(generate(gen, request_id, started.set), started)


@asynccontextmanager
async def billed_if_abandoned(
    ticket: Ticket, prompt_tokens: int, counts: list[int]
) -> AsyncIterator[None]:
    """Work that fails or is cancelled (its client left) is billed for what it generated."""
    try:
        yield
    except BaseException:
        await ticket.settle(Usage(prompt_tokens, 0, sum(counts)))
        raise
