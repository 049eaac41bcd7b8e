"""A generation another server runs: its Chat Completions stream read into neutral results.

The upstream does the sampling, the stop strings, the tool-call parsing and the counting; this
module turns its chunks into the same results a local engine's text gives (text with logprobs,
tool calls as they open and grow, each choice's end), so every endpoint renders an upstream
model exactly as a local one. Usage is the upstream's own (``stream_options.include_usage``);
an upstream that sends none is billed by estimate (the prompt's estimate, a token per chunk).
A reasoning model's thinking is read from the chunks' ``reasoning_content`` (or ``reasoning``),
as vLLM and llama-server send it, or from a think block at the head of its content.
Each stream is told to the upstream's observer (``Upstream.observer``: metrics and traces) as
a local engine's generations are: when its first result came, how it ended, its tokens.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serverroom.engine.base import GenerationRecord
from serverroom.engine.textgen import TokenInfo
from serverroom.errors import UpstreamError
from serverroom.generation import results
from serverroom.generation.thinking import ThinkSplitter
from serverroom.upstream import Upstream

if TYPE_CHECKING:
    from serverroom.generation.run import Generation

__all__ = ["UpstreamChat", "upstream_results"]

JSON = dict[str, Any]


@dataclass
class UpstreamChat:
    """What to send: the Chat Completions body (already in the upstream's terms), the pool's
    affinity key, and the prompt's size in tokens (an estimate until the upstream counts it)."""

    upstream: Upstream
    body: JSON
    affinity: str | None
    prompt_tokens: int
    cached_tokens: int = 0
    path: str = "/chat/completions"  # or "/completions", whose chunks carry ``text``


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    infos: list[TokenInfo] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]
    finish: str | None = None
    reasoning: list[str] = field(default_factory=list)
    splitter: ThinkSplitter | None = None  # a reasoning model's content: think block first


def _legacy_infos(raw: JSON) -> list[TokenInfo]:
    """Legacy Completions logprobs (parallel lists) as token infos."""
    tokens = raw.get("tokens") or []
    logprobs = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    out = []
    for token, logprob, top in zip(tokens, logprobs, tops, strict=False):
        alternatives = [(str(t), float(lp), list(str(t).encode())) for t, lp in (top or {}).items()]
        out.append(
            TokenInfo(str(token), float(logprob or 0.0), list(str(token).encode()), alternatives)
        )
    return out


def _infos(raw: Any) -> list[TokenInfo]:
    if isinstance(raw, dict) and "tokens" in raw:
        return _legacy_infos(raw)
    content = raw.get("content") if isinstance(raw, dict) else None
    out = []
    for entry in content or []:
        token = str(entry.get("token", ""))
        top = [
            (str(t.get("token", "")), float(t.get("logprob", 0.0)), list(t.get("bytes") or []))
            for t in entry.get("top_logprobs") or []
        ]
        data = entry.get("bytes")
        data = list(data) if data is not None else list(token.encode())
        out.append(TokenInfo(token, float(entry.get("logprob", 0.0)), data, top))
    return out


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class _Reader:
    """Reads one upstream stream's chunks into results."""

    def __init__(self, gen: Generation, call: UpstreamChat) -> None:
        self.gen = gen
        self.call = call
        self.choices = [_Choice() for _ in gen.jobs]
        thinking = gen.thinking
        if thinking is not None and call.path == "/chat/completions":
            for state in self.choices:
                state.splitter = ThinkSplitter(thinking.open, thinking.close, opened=False)
        self.usage: JSON | None = None

    def chunk(self, chunk: JSON) -> list[results.Result]:
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        out: list[results.Result] = []
        for raw in chunk.get("choices") or []:
            index = raw.get("index", 0) if isinstance(raw, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(self.choices):
                raise UpstreamError(f"The upstream server sent a chunk for choice {index!r}.")
            out += self._delta(index, raw)
        return out

    def _delta(self, index: int, raw: JSON) -> list[results.Result]:
        state = self.choices[index]
        delta = raw.get("delta") or {}
        out: list[results.Result] = []
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(thought, str) and thought:
            state.reasoning.append(thought)
            self.gen.tokens[index] += 1
            out.append(results.ReasoningOut(index, thought))
        content = delta.get("content") if "text" not in raw else raw["text"]
        if isinstance(content, str) and content:
            infos = _infos(raw.get("logprobs"))
            self.gen.tokens[index] += max(1, len(infos))
            pieces = state.splitter.feed(content) if state.splitter else [(False, content)]
            out += self._pieces(index, state, pieces, infos)
        for tool in delta.get("tool_calls") or []:
            out += self._tool(index, state, tool)
        if raw.get("finish_reason"):
            state.finish = str(raw["finish_reason"])
        return out

    @staticmethod
    def _pieces(
        index: int, state: _Choice, pieces: list[tuple[bool, str]], infos: list[TokenInfo]
    ) -> list[results.Result]:
        """Content read as reasoning or answer text (the logprobs go with the answer)."""
        out: list[results.Result] = []
        for thinking, text in pieces:
            if thinking:
                state.reasoning.append(text)
                out.append(results.ReasoningOut(index, text))
            else:
                state.text.append(text)
                state.infos += infos
                out.append(results.TextOut(index, text, infos))
                infos = []
        return out

    def _tool(self, index: int, state: _Choice, tool: JSON) -> list[results.Result]:
        position = tool.get("index", len(state.calls))
        function = tool.get("function") or {}
        out: list[results.Result] = []
        if position not in state.calls:
            ident = tool.get("id") or results.call_id(self.gen.call_ids, index, position)
            state.calls[position] = [str(ident), str(function.get("name") or ""), ""]
            out.append(results.CallOpened(index, position, str(ident), state.calls[position][1]))
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            state.calls[position][2] += piece
            self.gen.tokens[index] += 1
            out.append(results.CallArguments(index, position, piece))
        return out

    def end(self) -> list[results.Result]:
        if any(state.finish is None for state in self.choices):
            raise UpstreamError("The upstream server's answer ended before it finished.")
        usage = self.usage or {}
        details = usage.get("prompt_tokens_details") or {}
        prompt = int(usage.get("prompt_tokens") or self.call.prompt_tokens)
        cached = int(details.get("cached_tokens") or 0)
        completion = int(usage.get("completion_tokens") or sum(self.gen.tokens))
        thinking = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
        self.call.prompt_tokens, self.call.cached_tokens = prompt, cached
        self.gen.tokens[:] = [completion] + [0] * (len(self.choices) - 1)  # the total, once
        out: list[results.Result] = []
        for index, state in enumerate(self.choices):
            if state.splitter is not None:
                out += self._pieces(index, state, state.splitter.flush(), [])
            calls = [
                results.ToolCall(ident, name, args, _valid_json(args))
                for _, (ident, name, args) in sorted(state.calls.items())
            ]
            out += [results.CallClosed(index, i, call.arguments) for i, call in enumerate(calls)]
            finish: results.Finish = "length" if state.finish == "length" else "stop"
            if calls and finish == "stop":
                finish = "tool_calls"
            text = "".join(state.text)
            out.append(
                results.ChoiceDone(
                    index,
                    finish,
                    text if text or not calls else None,
                    calls,
                    state.infos,
                    prompt,
                    cached,
                    completion if index == 0 else 0,
                    "".join(state.reasoning) if state.reasoning else None,
                    thinking if index == 0 else 0,
                )
            )
        return out


async def upstream_results(
    gen: Generation, request_id: str, on_start: Callable[[], None] | None
) -> AsyncIterator[results.Result]:
    """The upstream generation's results; ``on_start`` is called once an upstream accepted it
    (its refusals before that are raised as they are, e.g. a relayed 400)."""
    call = gen.upstream
    assert call is not None
    watch = _Watch(gen, call)
    try:
        stream = await call.upstream.stream(
            call.path, call.body, affinity=call.affinity, request_id=request_id
        )
        if on_start is not None:
            on_start()
        reader = _Reader(gen, call)
        try:
            async for chunk in stream.chunks():
                for result in reader.chunk(chunk):
                    watch.first()
                    yield result
        finally:
            await stream.aclose()
        for result in reader.end():
            yield result
        watch.reason = "length" if reader.choices[0].finish == "length" else "stop"
    except BaseException as exc:
        stopped = isinstance(exc, GeneratorExit | asyncio.CancelledError)
        watch.reason = "cancelled" if stopped else "error"
        raise
    finally:
        watch.ended()


class _Watch:
    """Tells the upstream's observer how one stream went (``GenerationRecord``)."""

    def __init__(self, gen: Generation, call: UpstreamChat) -> None:
        self.gen, self.call = gen, call
        self.started = time.perf_counter()
        self.started_ns = time.time_ns()
        self.first_after: float | None = None
        self.reason = "cancelled"  # until the answer ends

    def first(self) -> None:
        if self.first_after is None:
            self.first_after = time.perf_counter() - self.started

    def ended(self) -> None:
        observer = self.call.upstream.observer
        if observer is None:
            return
        record = GenerationRecord(
            reason=self.reason,
            prompt_tokens=self.call.prompt_tokens,
            cached_tokens=self.call.cached_tokens,
            output_tokens=sum(self.gen.tokens),
            waited=None,
            first_after=self.first_after,
            after=time.perf_counter() - self.started,
            started_ns=self.started_ns,
            upstream=True,
        )
        observer.finished(record)
