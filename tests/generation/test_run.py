"""The generation layer on the fake engine: choices run together and interleave, priority
reaches the engine, tool calls are read with stable ids and the ``tool_calls`` finish, logprobs
come with text in tool mode too, and the fold of a stream is its choices' ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

from serverroom.constraints import ToolSetup, ToolSpec
from serverroom.constraints.tools import CALL_CLOSE, CALL_OPEN
from serverroom.engine.base import GenerationEvent, GenerationRequest, SamplingParams
from serverroom.engine.fake import FakeEngine
from serverroom.generation import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    Generation,
    Job,
    Result,
    TextOut,
    call_id,
    fold,
    generate,
)

TOOLS = ToolSetup([ToolSpec(name="f", description=None, parameters=None, strict=False)])


class Scripted(FakeEngine):
    """Replies with a fixed text and records the requests it was given."""

    def __init__(self, reply: str, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.reply = reply
        self.requests: list[GenerationRequest] = []

    def reply_for(self, request: GenerationRequest) -> bytes:
        return self.reply.encode()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self.requests.append(request)
        async for event in super().generate(request):
            yield event


def _gen(engine: FakeEngine, n: int = 1, **fields: object) -> Generation:
    params = SamplingParams(max_tokens=200, top_logprobs=fields.pop("top_logprobs", None))  # type: ignore[arg-type]
    return Generation(engine, [Job(engine.tokenize("hi"), params) for _ in range(n)], **fields)  # type: ignore[arg-type]


async def _all(stream: AsyncIterator[Result]) -> list[Result]:
    return [result async for result in stream]


async def test_choices_run_together_and_interleave() -> None:
    engine = Scripted("abcdefgh", delay=0.002)
    out = await _all(generate(_gen(engine, n=2), "req"))
    first_end = next(i for i, r in enumerate(out) if isinstance(r, ChoiceDone))
    assert {r.choice for r in out[:first_end] if isinstance(r, TextOut)} == {0, 1}
    ends = [r for r in out if isinstance(r, ChoiceDone)]
    assert sorted(e.choice for e in ends) == [0, 1]
    assert all(e.text == "abcdefgh" and e.finish_reason == "stop" for e in ends)


async def test_priority_reaches_the_engine() -> None:
    engine = Scripted("ok")
    await _all(generate(_gen(engine, n=2, priority=3), "req"))
    assert [r.priority for r in engine.requests] == [3, 3]


async def test_tool_calls_are_read_with_stable_ids() -> None:
    reply = CALL_OPEN + '{"name": "f", "arguments": {"a": 1}}' + CALL_CLOSE
    gen = _gen(Scripted(reply), tools=TOOLS, call_ids="chatcmpl-x")
    out = await _all(generate(gen, "req"))
    opened = [r for r in out if isinstance(r, CallOpened)]
    assert [(o.call, o.name, o.call_id) for o in opened] == [(0, "f", call_id("chatcmpl-x", 0, 0))]
    args = "".join(r.text for r in out if isinstance(r, CallArguments))
    assert args == '{"a": 1}'
    assert [r.arguments for r in out if isinstance(r, CallClosed)] == ['{"a": 1}']
    done = out[-1]
    assert isinstance(done, ChoiceDone)
    assert (done.finish_reason, done.text) == ("tool_calls", None)
    assert [(c.call_id, c.name, c.arguments) for c in done.calls] == [
        (opened[0].call_id, "f", '{"a": 1}')
    ]
    assert not any(isinstance(r, TextOut) for r in out)


async def test_text_in_tool_mode_carries_its_logprobs() -> None:
    gen = _gen(Scripted("plain words"), tools=TOOLS, top_logprobs=0)
    out = await _all(generate(gen, "req"))
    texts = [r for r in out if isinstance(r, TextOut)]
    assert "".join(t.text for t in texts) == "plain words"
    assert sum(len(t.logprobs) for t in texts) == len("plain words")
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.finish_reason == "stop"
    assert done.text == "plain words" and len(done.logprobs) == len("plain words")


async def test_the_fold_is_each_choices_end_and_tokens_are_counted() -> None:
    gen = _gen(Scripted("four"), n=3)
    ended = await fold(generate(gen, "req"))
    assert [e.choice for e in ended] == [0, 1, 2]
    assert [e.completion_tokens for e in ended] == [4, 4, 4]
    assert gen.tokens == [4, 4, 4]


async def test_a_zero_token_job_ends_at_once() -> None:
    engine = Scripted("never")
    gen = Generation(engine, [Job([1, 2], SamplingParams(max_tokens=0))])
    started: list[bool] = []
    ended = await fold(generate(gen, "req", lambda: started.append(True)))
    assert [(e.finish_reason, e.text, e.prompt_tokens) for e in ended] == [("length", "", 2)]
    assert started == [True] and engine.requests == []
