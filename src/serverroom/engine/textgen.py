"""From sampled tokens to text: UTF-8 assembly, stop strings, logprobs and usage.

This layer sits between an ``Engine`` and the API services. It is the one place that decides
which text a client sees: multi-byte characters are never split, a stop string ends the
generation (and is not shown), and an end-of-generation token is never rendered.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from serverroom.engine.base import (
    Engine,
    GenerationEvent,
    GenerationObserver,
    GenerationRecord,
    GenerationRequest,
    GenerationStats,
    PromptProcessed,
    SampledToken,
    SamplingParams,
)
from serverroom.errors import EngineError, ServiceUnavailableError


@dataclass(frozen=True)
class TokenInfo:
    """A token as logprobs report it."""

    token: str
    logprob: float
    bytes: list[int]
    top: list[tuple[str, float, list[int]]] = field(default_factory=list)


@dataclass(frozen=True)
class TextDelta:
    text: str
    token_ids: list[int]
    logprobs: list[TokenInfo]


@dataclass(frozen=True)
class TextDone:
    finish_reason: Literal["stop", "length"]
    text: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    token_ids: list[int]


TextEvent = TextDelta | TextDone


def _stop_hold(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` could begin a stop string."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:n]):
                hold = n
                break
    return hold


class _Assembler:
    """Accumulates token bytes into text and finds stop strings."""

    def __init__(self, engine: Engine, stops: Sequence[str]) -> None:
        self.engine = engine
        self.stops = [s for s in stops if s]
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""
        self.emitted = 0
        self.stopped = False

    def add(self, token: int) -> str:
        """Add a token; return the text now safe to show."""
        self.text += self.decoder.decode(self.engine.token_bytes(token))
        if self.stops:
            window = max(len(s) for s in self.stops) + 8
            start = max(0, self.emitted - window)
            hits = [i for s in self.stops if (i := self.text.find(s, start)) >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return self._take(len(self.text))
            return self._take(len(self.text) - _stop_hold(self.text, self.stops))
        return self._take(len(self.text))

    def flush(self) -> str:
        if not self.stopped:
            self.text += self.decoder.decode(b"", final=True)
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        piece = self.text[self.emitted : upto]
        self.emitted = upto
        return piece


def token_info(engine: Engine, sampled: SampledToken) -> TokenInfo:
    def describe(token: int) -> tuple[str, list[int]]:
        raw = engine.token_bytes(token)
        return raw.decode("utf-8", errors="replace"), list(raw)

    text, raw = describe(sampled.token)
    top = [(*describe(t.token), t.logprob) for t in sampled.top]
    return TokenInfo(
        token=text,
        logprob=sampled.logprob if sampled.logprob is not None else 0.0,
        bytes=raw,
        top=[(s, lp, b) for s, b, lp in top],
    )


async def generate_text(
    engine: Engine,
    prompt: list[int],
    params: SamplingParams,
    stop: Sequence[str] = (),
    *,
    request_id: str = "",
    priority: int = 0,
    on_start: Callable[[], None] | None = None,
) -> AsyncGenerator[TextEvent, None]:
    """Generate text for a prompt; yields ``TextDelta``s then one ``TextDone``.

    ``on_start`` is called once the engine has admitted the request (a slot is computing it).
    """
    assembler = _Assembler(engine, stop)
    want_logprobs = params.top_logprobs is not None
    cached = 0
    tokens: list[int] = []
    stream = engine.generate(
        GenerationRequest(prompt=prompt, params=params, request_id=request_id, priority=priority)
    )
    finish: Literal["stop", "length"] = "stop"
    watch = _Watch(engine.observer, len(prompt))
    try:
        async for event in stream:
            watch.saw(event)
            if isinstance(event, PromptProcessed):
                cached = event.cached_tokens
                if on_start is not None:
                    on_start()
            elif isinstance(event, SampledToken):
                if engine.is_end_of_generation(event.token):
                    break
                tokens.append(event.token)
                piece = assembler.add(event.token)
                infos = [token_info(engine, event)] if want_logprobs else []
                if piece or infos:
                    yield TextDelta(piece, [event.token], infos)
                if assembler.stopped:
                    break
            else:
                finish = _finish_reason(event)
                break
        watch.ended("stop" if assembler.stopped else finish)
    finally:
        watch.ended("cancelled")
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
    tail = assembler.flush()
    if tail:
        yield TextDelta(tail, [], [])
    yield TextDone(
        finish_reason="stop" if assembler.stopped else finish,
        text=assembler.text,
        prompt_tokens=len(prompt),
        cached_tokens=cached,
        completion_tokens=len(tokens),
        token_ids=tokens,
    )


class _Watch:
    """Tells an engine's observer how one generation went (``GenerationRecord``): when a slot
    took it, when its first token came, and how it ended (the first reason given)."""

    def __init__(self, observer: GenerationObserver | None, prompt_tokens: int) -> None:
        self.observer = observer
        self.prompt_tokens = prompt_tokens
        self.started = time.perf_counter()
        self.started_ns = time.time_ns()
        self.cached = 0
        self.tokens = 0
        self.forced = 0
        self.waited: float | None = None
        self.first: float | None = None
        self.done = False

    def saw(self, event: GenerationEvent) -> None:
        if self.observer is None:
            return
        if isinstance(event, PromptProcessed):
            self.waited = time.perf_counter() - self.started
            self.cached = event.cached_tokens
        elif isinstance(event, SampledToken):
            self.tokens += 1
            self.forced += event.forced
            if self.tokens == 1:
                self.first = time.perf_counter() - self.started
        elif event.finish_reason == "error":
            self.ended("error")

    def ended(self, reason: str) -> None:
        if self.observer is None or self.done:
            return
        self.done = True
        record = GenerationRecord(
            reason=reason,
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached,
            output_tokens=self.tokens,
            waited=self.waited,
            first_after=self.first,
            after=time.perf_counter() - self.started,
            started_ns=self.started_ns,
            forced_tokens=self.forced,
        )
        self.observer.finished(record)


def _finish_reason(stats: GenerationStats) -> Literal["stop", "length"]:
    if stats.finish_reason == "error":
        raise EngineError(f"The engine failed: {stats.error or 'unknown error'}")
    if stats.finish_reason == "cancelled":
        raise ServiceUnavailableError(
            "The request was cancelled because the server is shutting down."
        )
    return "length" if stats.finish_reason == "length" else "stop"
