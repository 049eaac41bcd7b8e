"""Running a generation: every choice through the engine, read into neutral results.

``Generation`` describes the work (jobs, stop strings, tools, priority); ``results`` runs its
choices concurrently and interleaves their results, ``fold`` keeps each choice's end. This is
the one place where tool calls are read out of generated text, where the ``tool_calls`` finish
rule is applied, and where the tokens generated so far are counted for billing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from serverroom.constraints import (
    ArgumentsPiece,
    CallDone,
    CallStarted,
    TextPiece,
    ToolCallParser,
    ToolSetup,
)
from serverroom.engine.base import Engine, SamplingParams
from serverroom.engine.textgen import TextDelta, TextDone, TokenInfo, generate_text
from serverroom.generation.results import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    Finish,
    Result,
    TextOut,
    ToolCall,
    call_id,
)
from serverroom.generation.upstream import UpstreamChat, upstream_results

__all__ = ["Generation", "Job", "UpstreamChat", "call_id", "fold", "generate"]


@dataclass(frozen=True)
class Job:
    """One choice's prompt and sampling parameters."""

    prompt: list[int]
    params: SamplingParams


@dataclass
class Generation:
    """One request's generation, on a local ``engine`` or, with ``upstream`` set, on another
    server (``jobs`` then hold each choice's parameters, with no prompt tokens). ``tools``
    (active ones only) makes a local output read as tool calls; ``call_ids`` seeds the calls'
    ids; ``tokens`` counts each choice's generated tokens as they come (what a generation
    abandoned halfway is billed for)."""

    engine: Engine | None
    jobs: list[Job]
    stop: list[str] = field(default_factory=list)
    tools: ToolSetup | None = None
    call_ids: str = ""
    priority: int = 0
    upstream: UpstreamChat | None = None
    tokens: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = [0] * len(self.jobs)

    @property
    def prompt_tokens(self) -> int:
        """The first choice's prompt size (the upstream's count once it has answered)."""
        if self.upstream is not None:
            return self.upstream.prompt_tokens
        return len(self.jobs[0].prompt)


class _Reader:
    """Reads one choice's text events into results (tool calls when the choice has tools)."""

    def __init__(self, gen: Generation, choice: int) -> None:
        self.gen = gen
        self.choice = choice
        self.parser = ToolCallParser() if gen.tools is not None else None
        self.infos: list[TokenInfo] = []
        self.pending: list[TokenInfo] = []  # logprobs not yet shown with text

    def delta(self, event: TextDelta) -> list[Result]:
        self.infos.extend(event.logprobs)
        if self.parser is None:
            if event.text or event.logprobs:
                return [TextOut(self.choice, event.text, event.logprobs)]
            return []
        self.pending.extend(event.logprobs)
        return [out for found in self.parser.feed(event.text) for out in self._tool(found)]

    def _tool(self, found: object) -> list[Result]:
        if isinstance(found, TextPiece):
            shown, self.pending = self.pending, []
            return [TextOut(self.choice, found.text, shown)]
        if isinstance(found, CallStarted):
            ident = call_id(self.gen.call_ids, self.choice, found.index)
            return [CallOpened(self.choice, found.index, ident, found.name)]
        if isinstance(found, ArgumentsPiece):
            return [CallArguments(self.choice, found.index, found.text)]
        assert isinstance(found, CallDone)
        return [CallClosed(self.choice, found.index, found.arguments)]

    def done(self, event: TextDone) -> list[Result]:
        out: list[Result] = []
        text: str | None = event.text
        calls: list[ToolCall] = []
        finish: Finish = event.finish_reason
        if self.parser is not None:
            if self.parser.pending_text():
                out.append(TextOut(self.choice, self.parser.pending_text(), self.pending))
            if self.parser.is_calls and self.parser.calls:
                text = None
                calls = [
                    ToolCall(
                        call_id(self.gen.call_ids, self.choice, i), c.name, c.arguments, c.complete
                    )
                    for i, c in enumerate(self.parser.calls)
                ]
                finish = "tool_calls" if finish == "stop" else finish
        ended = ChoiceDone(
            self.choice,
            finish,
            text,
            calls,
            self.infos,
            event.prompt_tokens,
            event.cached_tokens,
            event.completion_tokens,
        )
        return [*out, ended]


async def _choice(
    gen: Generation, choice: int, request_id: str, on_start: Callable[[], None] | None
) -> AsyncIterator[Result]:
    job = gen.jobs[choice]
    if job.params.max_tokens == 0:  # legacy Completions' echo-only request: nothing to run
        if on_start is not None:
            on_start()
        yield ChoiceDone(choice, "length", "", [], [], len(job.prompt), 0, 0)
        return
    reader = _Reader(gen, choice)
    assert gen.engine is not None  # a local generation
    events = generate_text(
        gen.engine,
        job.prompt,
        job.params,
        gen.stop,
        request_id=request_id,
        priority=gen.priority,
        on_start=on_start,
    )
    async for event in events:
        if isinstance(event, TextDelta):
            gen.tokens[choice] += len(event.token_ids)
            for result in reader.delta(event):
                yield result
        else:
            for result in reader.done(event):
                yield result


async def generate(
    gen: Generation, request_id: str, on_start: Callable[[], None] | None = None
) -> AsyncIterator[Result]:
    """Every choice's results, interleaved as they come. ``on_start`` is called when the engine
    admits the first choice. Closing the stream (or one choice failing) stops every choice."""
    if gen.upstream is not None:
        async for result in upstream_results(gen, request_id, on_start):
            yield result
        return
    if len(gen.jobs) == 1:
        async for result in _choice(gen, 0, request_id, on_start):
            yield result
        return
    queue: asyncio.Queue[Result | BaseException | None] = asyncio.Queue()

    async def pump(choice: int) -> None:
        try:
            async for result in _choice(gen, choice, request_id, on_start):
                await queue.put(result)
            await queue.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(i)) for i in range(len(gen.jobs))]
    remaining = len(tasks)
    try:
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def fold(stream: AsyncIterator[Result]) -> list[ChoiceDone]:
    """Run a stream to its end; each choice's end, in choice order."""
    ended: dict[int, ChoiceDone] = {}
    async for result in stream:
        if isinstance(result, ChoiceDone):
            ended[result.choice] = result
    return [ended[i] for i in sorted(ended)]
