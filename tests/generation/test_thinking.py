"""Thinking before answering: the think-block parser (tags whole, split across pieces, never
closed), the budget an effort buys, and the two phases on the fake engine (the block first,
then the answer with the block in its prompt, the reasoning counted with the output)."""

from __future__ import annotations

import json

import httpx
import pytest

from serverroom.catalog import UpstreamSpec
from serverroom.engine.base import SamplingParams
from serverroom.generation import (
    ChoiceDone,
    Generation,
    Job,
    ReasoningOut,
    Result,
    TextOut,
    Thinking,
    UpstreamChat,
    generate,
)
from serverroom.generation.thinking import (
    EFFORT_BUDGETS,
    TagScrubber,
    ThinkSplitter,
    think_grammar,
)
from serverroom.upstream import Connections, Upstream
from tests.generation.test_run import Scripted, _all
from tests.upstream.stub import stub_server


def _split(pieces: list[str], *, opened: bool = False) -> tuple[str, str, list[tuple[bool, str]]]:
    splitter = ThinkSplitter(opened=opened)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    return splitter.reasoning, splitter.answer, out


def test_a_whole_block_then_the_answer() -> None:
    reasoning, answer, _ = _split(["<think>\n2 and 3 make 5\n</think>\n\nIt is 5."])
    assert (reasoning, answer) == ("2 and 3 make 5\n", "It is 5.")


def test_tags_split_across_pieces() -> None:
    text = "  <think>a < b, so</think>The answer."
    pieces = [text[i : i + 1] for i in range(len(text))]  # one character at a time
    reasoning, answer, out = _split(pieces)
    assert (reasoning, answer) == ("a < b, so", "The answer.")
    assert all("<" not in t for thinking, t in out if not thinking)  # no tag leaks
    assert "".join(t for thinking, t in out if thinking) == "a < b, so"
    reasoning, answer, _ = _split(["<th", "ink>x</th", "ink>y"])
    assert (reasoning, answer) == ("x", "y")


def test_an_unterminated_block_is_all_reasoning() -> None:
    reasoning, answer, _ = _split(["<think>still thinking when the budget ran o", "ut </thi"])
    assert reasoning == "still thinking when the budget ran out </thi" and answer == ""


def test_no_block_is_all_answer_and_an_opened_one_needs_no_tag() -> None:
    assert _split(["Just ", "an answer <think>"])[:2] == ("", "Just an answer <think>")
    assert _split(["<thin"])[:2] == ("", "<thin")  # never became the tag
    assert _split(["x</think>y"], opened=True)[:2] == ("x", "y")


def test_the_scrubber_drops_tags_split_anywhere_and_keeps_the_rest() -> None:
    text = "It is </think>5. <think>Sure</thi"
    for size in (1, 2, 3, 7, len(text)):
        scrubber = TagScrubber(("<think>", "</think>"))
        pieces = [scrubber.feed(text[i : i + size]) for i in range(0, len(text), size)]
        assert "".join(pieces) + scrubber.flush() == "It is 5. Sure</thi"
    assert TagScrubber(("</think>",)).scrub("a</think>b</think>") == "ab"
    assert TagScrubber(("<think>", "</think>")).scrub("x<thi</think>nk>y") == "xy"


def test_efforts_buy_growing_budgets() -> None:
    budgets = [EFFORT_BUDGETS[e] for e in ("none", "minimal", "low", "medium", "high", "xhigh")]
    assert budgets == sorted(budgets) and budgets[0] == 0
    assert Thinking.for_effort(None, scaffold=True, tags=("<think>", "</think>")).budget == 192
    assert "max_tokens=64" in think_grammar(64, "</think>")


def _thinking_gen(engine: Scripted, max_tokens: int, budget: int) -> Generation:
    job = Job(engine.tokenize("<|user|>hi\n<|assistant|>"), SamplingParams(max_tokens=max_tokens))
    return Generation(engine, [job], thinking=Thinking(budget))


async def test_the_block_is_generated_first_then_the_answer_after_it() -> None:
    engine = Scripted("Some scratch work.")
    out = await _all(generate(_thinking_gen(engine, 200, 64), "r"))
    first_text = next(i for i, r in enumerate(out) if isinstance(r, TextOut))
    assert all(isinstance(r, ReasoningOut) for r in out[:first_text])
    done = out[-1]
    assert isinstance(done, ChoiceDone)
    assert done.reasoning == "Some scratch work." and done.text == "Some scratch work."
    thinking, answering = engine.requests
    assert bytes(thinking.prompt).endswith(b"<|assistant|><think>\n")
    assert thinking.params.constraint is not None  # the scaffold's grammar holds the block
    assert bytes(answering.prompt).endswith(b"<think>\nSome scratch work.\n</think>\n\n")
    assert answering.params.constraint is None and answering.params.max_tokens == 200 - 18
    assert done.reasoning_tokens == 18 and done.completion_tokens == 36
    assert done.prompt_tokens == len(thinking.prompt) - len("<think>\n")


async def test_the_budget_ends_the_block() -> None:
    engine = Scripted("x" * 100)
    out = await _all(generate(_thinking_gen(engine, 200, 10), "r"))
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.reasoning is not None
    assert len(done.reasoning) == 10 and done.reasoning_tokens <= 10 + len("</think>")


async def test_a_scaffolded_answer_that_closes_the_block_again_shows_no_tag() -> None:
    engine = Scripted("Scratch.</think>\n\nIt is 5.")  # the answer repeats it all
    out = await _all(generate(_thinking_gen(engine, 200, 64), "r"))
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.reasoning == "Scratch."
    assert done.text == "Scratch.\n\nIt is 5."
    assert "".join(r.text for r in out if isinstance(r, TextOut)) == done.text


async def test_thinking_that_eats_the_limit_leaves_no_answer() -> None:
    engine = Scripted("x" * 100)
    out = await _all(generate(_thinking_gen(engine, 12, 64), "r"))
    assert not any(isinstance(r, TextOut) for r in out)
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.finish_reason == "length"
    assert done.text == "" and done.reasoning_tokens == done.completion_tokens == 12
    assert len(engine.requests) == 1


async def test_no_budget_no_thinking() -> None:
    engine = Scripted("Hi.")
    out = await _all(generate(_thinking_gen(engine, 50, 0), "r"))
    assert not any(isinstance(r, ReasoningOut) for r in out)
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.reasoning is None and done.reasoning_tokens == 0
    assert len(engine.requests) == 1 and not bytes(engine.requests[0].prompt).endswith(b">\n\n")


async def test_a_native_thinker_whose_template_opened_the_block() -> None:
    engine = Scripted("Thought.")
    job = Job(engine.tokenize("<|assistant|><think>\n"), SamplingParams(max_tokens=100))
    gen = Generation(engine, [job], thinking=Thinking(32, scaffold=False))
    out = await _all(generate(gen, "r"))
    thinking, answering = engine.requests
    assert thinking.params.constraint is None  # a native thinker is not held to the scaffold
    assert bytes(thinking.prompt) == b"<|assistant|><think>\n"  # not opened twice
    assert bytes(answering.prompt).endswith(b"<think>\nThought.\n</think>\n\n")
    assert isinstance(out[-1], ChoiceDone) and out[-1].reasoning == "Thought."


async def _upstream(chunks: list[dict[str, object]]) -> list[Result]:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with stub_server(answer) as server:
        upstream = Upstream(UpstreamSpec((server.base_url("a"),), "m"), Connections())
        chat = UpstreamChat(upstream, {"messages": []}, None, prompt_tokens=9)
        jobs = [Job([], SamplingParams(max_tokens=64))]
        gen = Generation(None, jobs, upstream=chat, thinking=Thinking(64, scaffold=False))
        try:
            return [r async for r in generate(gen, "r")]
        finally:
            await upstream.connections.close()


def _delta(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize(
    "chunks",
    [
        [
            _delta({"content": "<thi"}),
            _delta({"content": "nk>2+2=4</th"}),
            _delta({"content": "ink>Four."}),
        ],
        [
            _delta({"reasoning_content": "2+2="}),
            _delta({"reasoning_content": "4"}),
            _delta({"content": "Four."}),
        ],
    ],
    ids=["think-tags-in-content", "reasoning_content"],
)
async def test_an_upstreams_thinking_is_reasoning(chunks: list[dict[str, object]]) -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 7,
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    out = await _upstream([*chunks, _delta({}, "stop"), {"choices": [], "usage": usage}])
    assert "".join(r.text for r in out if isinstance(r, TextOut)) == "Four."
    assert "".join(r.text for r in out if isinstance(r, ReasoningOut)) == "2+2=4"
    done = out[-1]
    assert isinstance(done, ChoiceDone) and done.text == "Four." and done.reasoning == "2+2=4"
    assert done.reasoning_tokens == 5 and done.completion_tokens == 7
