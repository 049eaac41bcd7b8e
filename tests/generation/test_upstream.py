"""An upstream's Chat Completions stream read into neutral results."""

from __future__ import annotations

import json

import httpx
import pytest

from serverroom.catalog import UpstreamSpec
from serverroom.engine.base import GenerationRecord, SamplingParams
from serverroom.errors import UpstreamError
from serverroom.generation import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    Generation,
    Job,
    Result,
    TextOut,
    UpstreamChat,
    generate,
)
from serverroom.upstream import Connections, Upstream
from tests.upstream.stub import stub_server


def _sse(chunks: list[dict[str, object]], done: bool = True) -> bytes:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


class _Records:
    """An observer that keeps the records it hears."""

    def __init__(self) -> None:
        self.records: list[GenerationRecord] = []

    def finished(self, record: GenerationRecord) -> None:
        self.records.append(record)


async def _run(
    payload: bytes, n: int = 1, observer: _Records | None = None
) -> tuple[list[Result], Generation]:
    """The results of a generation whose upstream answers ``payload`` (a stub server)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=payload, headers={"content-type": "text/event-stream"})

    with stub_server(answer) as server:
        upstream = Upstream(UpstreamSpec((server.base_url("a"),), "m"), Connections(), observer)
        chat = UpstreamChat(upstream, {"messages": []}, None, prompt_tokens=99)
        jobs = [Job([], SamplingParams(max_tokens=8))] * n
        gen = Generation(None, jobs, call_ids="seed", upstream=chat)
        try:
            return [r async for r in generate(gen, "r")], gen
        finally:
            await upstream.connections.close()


def _choice(
    delta: dict[str, object], finish: str | None = None, index: int = 0
) -> dict[str, object]:
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


async def test_text_and_the_upstreams_usage() -> None:
    usage = {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    out, gen = await _run(
        _sse(
            [
                _choice({"content": "Hi"}),
                _choice({"content": "!"}, "stop"),
                {"choices": [], "usage": usage},
            ]
        )
    )
    assert out[:2] == [TextOut(0, "Hi", []), TextOut(0, "!", [])]
    done = out[-1]
    assert isinstance(done, ChoiceDone)
    assert (done.text, done.finish_reason, done.prompt_tokens, done.cached_tokens) == (
        "Hi!",
        "stop",
        7,
        3,
    )
    assert done.completion_tokens == 2 and gen.prompt_tokens == 7 and gen.tokens == [2]


async def test_tool_calls_open_grow_and_close() -> None:
    opened = {
        "tool_calls": [{"index": 0, "id": "call_x", "function": {"name": "f", "arguments": ""}}]
    }
    grow = {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}
    out, _ = await _run(_sse([_choice(opened), _choice(grow), _choice({}, "stop")]))
    assert out[0] == CallOpened(0, 0, "call_x", "f")
    assert out[1] == CallArguments(0, 0, '{"a": 1}')
    assert out[2] == CallClosed(0, 0, '{"a": 1}')
    done = out[3]
    assert isinstance(done, ChoiceDone) and done.finish_reason == "tool_calls" and done.text is None
    assert done.calls[0].call_id == "call_x" and done.calls[0].complete
    assert done.prompt_tokens == 99  # no usage sent: the estimate stands


async def test_choices_interleave_and_each_ends() -> None:
    out, _ = await _run(
        _sse(
            [
                _choice({"content": "a"}, index=1),
                _choice({"content": "b"}, "stop", 0),
                _choice({}, "length", 1),
            ]
        ),
        n=2,
    )
    ended = [r for r in out if isinstance(r, ChoiceDone)]
    assert [(d.choice, d.text, d.finish_reason) for d in ended] == [
        (0, "b", "stop"),
        (1, "a", "length"),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        _sse([_choice({"content": "a"})], done=False),  # cut: no finish
        b"data: {nope\n\n",
        _sse([{"error": {"message": "overloaded"}}]),
        _sse([_choice({"content": "a"}, index=3)]),
    ],
)
async def test_broken_streams_are_upstream_errors(payload: bytes) -> None:
    with pytest.raises(UpstreamError):
        await _run(payload)


async def test_each_stream_is_told_to_the_upstreams_observer() -> None:
    usage = {
        "prompt_tokens": 7,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    seen = _Records()
    await _run(
        _sse([_choice({"content": "Hi"}), _choice({}, "length"), {"choices": [], "usage": usage}]),
        observer=seen,
    )
    with pytest.raises(UpstreamError):
        await _run(_sse([_choice({"content": "Hi"})], done=False), observer=seen)
    done, failed = seen.records
    assert (done.reason, done.prompt_tokens, done.cached_tokens, done.output_tokens) == (
        "length",
        7,
        3,
        2,
    )
    assert done.waited is None and done.first_after is not None
    assert 0 < done.first_after <= done.after
    assert failed.reason == "error" and failed.first_after is not None
