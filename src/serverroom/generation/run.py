"""Running a generation: every choice through the engine, read into neutral results.

``Generation`` describes the work (jobs, stop strings, tools, priority); ``results`` runs its
choices concurrently and interleaves their results, ``fold`` keeps each choice's end. This is
the one place where tool calls are read out of generated text, where the ``tool_calls`` finish
rule is applied, where a reasoning model thinks before it answers (``_Thought``: the block
is generated on its own, then the answer follows it in the prompt), and where the tokens
generated so far are counted for billing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from serverroom.constraints import (
    ArgumentsPiece,
    CallDone,
    CallStarted,
    TextPiece,
    ToolCallParser,
    ToolSetup,
)
from serverroom.constraints.grammar import GrammarConstraint
from serverroom.engine.base import Engine, SamplingParams
from serverroom.engine.textgen import TextDelta, TextDone, TextEvent, TokenInfo, generate_text
from serverroom.generation.results import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    Finish,
    ReasoningOut,
    Result,
    TextOut,
    ToolCall,
    call_id,
)
from serverroom.generation.thinking import TagScrubber, Thinking, ThinkSplitter, think_grammar
from serverroom.generation.upstream import UpstreamChat, upstream_results

__all__ = ["Generation", "Job", "Thinking", "UpstreamChat", "call_id", "fold", "generate"]


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
    ids; ``thinking``: a reasoning model's thinking phase, run before each choice's answer;
    ``tokens`` counts each choice's generated tokens as they come (what a generation
    abandoned halfway is billed for)."""

    engine: Engine | None
    jobs: list[Job]
    stop: list[str] = field(default_factory=list)
    tools: ToolSetup | None = None
    call_ids: str = ""
    priority: int = 0
    upstream: UpstreamChat | None = None
    thinking: Thinking | None = None
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


class _Thought:
    """One choice's thinking: the block generated on its own (reasoning results), then the
    job that answers after it."""

    def __init__(self, gen: Generation, choice: int, engine: Engine) -> None:
        assert gen.thinking is not None
        self.gen, self.choice, self.engine = gen, choice, engine
        self.plan = gen.thinking
        self.job = gen.jobs[choice]
        tail = b"".join(engine.token_bytes(t) for t in self.job.prompt[-8:])
        self.opened = self.plan.opened_by(tail.decode("utf-8", errors="ignore"))
        self.text = ""
        self.tokens = 0
        self.cached = 0

    async def run(
        self, request_id: str, on_start: Callable[[], None] | None
    ) -> AsyncIterator[ReasoningOut]:
        plan, job = self.plan, self.job
        if plan.budget == 0:
            if on_start is not None:
                on_start()
            return
        limit = min(job.params.max_tokens, plan.budget + (8 if plan.scaffold else 0))
        grammar = think_grammar(plan.budget, plan.close) if plan.scaffold else None
        constraint = (
            GrammarConstraint(self.engine.constraint_tokenizer(), grammar, self.engine.vocab_size)
            if grammar is not None
            else None
        )
        params = replace(job.params, max_tokens=limit, constraint=constraint, top_logprobs=None)
        prompt = job.prompt + self.engine.tokenize(plan.prefill(self.opened), special=False)
        splitter = ThinkSplitter(plan.open, plan.close, opened=True)
        events = generate_text(
            self.engine,
            prompt,
            params,
            [plan.close],
            request_id=request_id,
            priority=self.gen.priority,
            on_start=on_start,
        )
        async for event in events:
            if isinstance(event, TextDelta):
                self.gen.tokens[self.choice] += len(event.token_ids)
                pieces = splitter.feed(event.text)
            else:
                self.tokens, self.cached = event.completion_tokens, event.cached_tokens
                pieces = splitter.flush()
            for _, text in pieces:
                self.text += text
                yield ReasoningOut(self.choice, text)

    @property
    def exhausted(self) -> bool:
        """The thinking took every token the choice may generate: no answer follows."""
        return self.tokens >= self.job.params.max_tokens

    def answer_job(self) -> Job:
        prefix = self.plan.answer_prefix(self.text, self.opened)
        prompt = self.job.prompt + self.engine.tokenize(prefix, special=False)
        params = replace(self.job.params, max_tokens=self.job.params.max_tokens - self.tokens)
        return Job(prompt, params)

    def done(self, ended: ChoiceDone | None = None) -> ChoiceDone:
        """The choice's end, counting the thinking (the answer's ``ended``; None: cut off)."""
        reasoning = self.text if self.plan.budget else None
        if ended is None:
            return ChoiceDone(
                self.choice, "length", "", [], [], len(self.job.prompt), self.cached,
                self.tokens, reasoning, self.tokens,
            )  # fmt: skip
        return replace(
            ended,
            prompt_tokens=len(self.job.prompt),
            cached_tokens=self.cached,
            completion_tokens=ended.completion_tokens + self.tokens,
            reasoning=reasoning,
            reasoning_tokens=self.tokens,
        )


async def _choice(
    gen: Generation, choice: int, request_id: str, on_start: Callable[[], None] | None
) -> AsyncIterator[Result]:
    job = gen.jobs[choice]
    if job.params.max_tokens == 0:  # legacy Completions' echo-only request: nothing to run
        if on_start is not None:
            on_start()
        yield ChoiceDone(choice, "length", "", [], [], len(job.prompt), 0, 0)
        return
    assert gen.engine is not None  # a local generation
    thought: _Thought | None = None
    if gen.thinking is not None:
        thought = _Thought(gen, choice, gen.engine)
        async for reasoning in thought.run(request_id, on_start):
            yield reasoning
        if thought.exhausted:
            yield thought.done()
            return
        job, on_start = thought.answer_job(), None
    reader = _Reader(gen, choice)
    events = generate_text(
        gen.engine,
        job.prompt,
        job.params,
        gen.stop,
        request_id=request_id,
        priority=gen.priority,
        on_start=on_start,
    )
    if thought is not None and thought.plan.scaffold:
        events = _scrubbed(events, TagScrubber((thought.plan.open, thought.plan.close)))
    async for event in events:
        if isinstance(event, TextDelta):
            gen.tokens[choice] += len(event.token_ids)
            for result in reader.delta(event):
                yield result
        else:
            for result in reader.done(event):
                yield thought.done(result) if thought and isinstance(result, ChoiceDone) else result


async def _scrubbed(
    events: AsyncGenerator[TextEvent, None], scrubber: TagScrubber
) -> AsyncGenerator[TextEvent, None]:
    """A scaffolded answer's text events without the think block's tags."""
    async with aclosing(events):  # closing this stream ends the generation at once
        async for event in events:
            if isinstance(event, TextDelta):
                yield replace(event, text=scrubber.feed(event.text))
                continue
            if rest := scrubber.flush():
                yield TextDelta(rest, [], [])
            yield replace(event, text=scrubber.scrub(event.text))


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
