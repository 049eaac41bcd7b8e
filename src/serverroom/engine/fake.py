"""A deterministic engine for fast API tests: bytes are tokens, replies are canned words.

It honours the same contract as the llama.cpp engine (slots, a bounded queue, max_tokens,
seeds, logit bias on byte tokens, logprobs, constraints, cancellation) without loading a model.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from llguidance import LLTokenizer

from serverroom.constraints.tokenizers import byte_tokenizer
from serverroom.engine.base import (
    ChatMessage,
    EngineLoad,
    GenerationEvent,
    GenerationObserver,
    GenerationRequest,
    GenerationStats,
    PromptProcessed,
    SampledToken,
    TopLogprob,
)
from serverroom.engine.slots import SlotGate

BOS = 256
EOS = 257
_SPECIAL = {BOS: b"", EOS: b""}
_PREFER = (EOS, *b'"@}],D5')
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "bright",
    "stars",
    "shine",
    "above",
    "quiet",
    "hills",
    "and",
    "rivers",
]


class FakeEngine:
    """A model-free ``Engine``: tokens are UTF-8 bytes plus BOS/EOS."""

    def __init__(
        self,
        *,
        context_length: int = 2048,
        slots: int = 4,
        max_queue: int = 64,
        delay: float = 0.0,
        reply_words: int = 12,
    ) -> None:
        self._context_length = context_length
        self._delay = delay
        self._reply_words = reply_words
        self._gate = SlotGate(slots, max_queue)
        self._ready = False
        self.observer: GenerationObserver | None = None

    @property
    def capacity(self) -> int:
        return self._gate.capacity

    def room(self) -> int:
        return self._gate.room()

    def load(self) -> EngineLoad:
        gate = self._gate
        return EngineLoad(running=gate.busy, queued=gate.waiting, slots=gate.slots)

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def vocab_size(self) -> int:
        return 258

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        self._ready = True

    async def close(self) -> None:
        self._ready = False

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return list(text.encode("utf-8"))

    def token_bytes(self, token: int) -> bytes:
        return _SPECIAL.get(token, bytes([token])) if token < 258 else b""

    def is_end_of_generation(self, token: int) -> bool:
        return token == EOS

    def constraint_tokenizer(self) -> LLTokenizer:
        return byte_tokenizer()

    def describe(self) -> str:
        return ""

    def render_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> str:
        parts = [f"<|{m.role}|>{m.content}\n" for m in messages]
        return "".join(parts) + "<|assistant|>"

    def tokenize_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        return self.tokenize(self.render_chat(messages, tools=tools))

    def reply_for(self, request: GenerationRequest) -> bytes:
        """The canned reply: fixed under greedy decoding, seeded words otherwise."""
        params = request.params
        if params.temperature == 0:
            rng = random.Random(len(request.prompt))
        elif params.seed is not None:
            rng = random.Random(params.seed)
        else:
            rng = random.Random()
        words = [rng.choice(WORDS) for _ in range(self._reply_words)]
        return (" ".join(words).capitalize() + ".").encode()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        async with self._gate.slot():
            async for event in self._run(request):
                yield event

    async def _run(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        params = request.params
        yield PromptProcessed(cached_tokens=0)
        reply = [*list(self.reply_for(request)), EOS]
        if params.constraint is not None:  # keep going (planning EOS) until it is satisfied
            reply += [EOS] * max(0, params.max_tokens - len(reply))
        for count, planned in enumerate(reply, start=1):
            token = self._pick(planned, request)
            if self._delay:
                await asyncio.sleep(self._delay)
            yield self._sampled(token, params.top_logprobs)
            constraint = params.constraint
            if constraint is not None:
                constraint.accept(token)
                if constraint.is_finished():
                    yield self._stats(request, "stop", count)
                    return
            if token == EOS:
                yield self._stats(request, "stop", count)
                return
            if count >= params.max_tokens:
                yield self._stats(request, "length", count)
                return
            await asyncio.sleep(0)
        yield self._stats(request, "stop", len(reply))

    def _pick(self, planned: int, request: GenerationRequest) -> int:
        params = request.params
        for token, bias in params.logit_bias.items():
            if bias >= 100 and 0 <= token < 258:
                return token
        if params.logit_bias.get(planned, 0) <= -100:
            planned = ord("_")
        constraint = params.constraint
        if constraint is not None:
            mask = constraint.allowed_mask()
            if mask is not None and not mask[planned]:
                allowed = [i for i in range(len(mask)) if mask[i]]
                preferred = (t for t in _PREFER if mask[t])  # closers first: terminates
                planned = next(preferred, allowed[0]) if allowed else EOS
        return planned

    @staticmethod
    def _sampled(token: int, top_logprobs: int | None) -> SampledToken:
        if top_logprobs is None:
            return SampledToken(token)
        logprob = -0.05 * (token % 5)
        others = [TopLogprob(token, logprob)] + [
            TopLogprob((token + k) % 256, logprob - k) for k in range(1, top_logprobs)
        ]
        return SampledToken(token, logprob, tuple(others[:top_logprobs]))

    @staticmethod
    def _stats(request: GenerationRequest, reason: str, count: int) -> GenerationStats:
        assert reason in ("stop", "length")
        return GenerationStats(
            finish_reason="stop" if reason == "stop" else "length",
            prompt_tokens=len(request.prompt),
            cached_tokens=0,
            completion_tokens=count,
        )


__all__ = ["BOS", "EOS", "FakeEngine"]
