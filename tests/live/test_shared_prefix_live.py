"""A burst of requests sharing one new system prompt, on the bundled model: the prefix is
computed once and shared (each later request's usage counts it as cached), and under greedy
decoding every answer is the one the request gets alone, with one KV stream per slot (the
prefix's KV is copied) and with one unified KV buffer (the slots share its cells).

"The same answer" is checked on the first tokens' log-probabilities, not on bits: llama.cpp's
CPU kernels round differently when a sequence is decoded in a batch with others than alone (the
first request, which shares nothing, is off by as much as the rest: ~0.04-0.1 nats here), and a
long greedy text can flip on such a difference. A prefix taken from the wrong place changes
the distribution by far more than that."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live

SYSTEM = "You are the support assistant of Northwind Supplies.\n" + "\n".join(
    f"Rule {i}: answer questions about order {1000 + i * 37} politely and quote section"
    f" {i % 7 + 1}.{i % 5 + 1} of the handbook."
    for i in range(1, 16)
)
QUESTIONS = [
    "Can I return a jacket?",
    "How long does delivery take?",
    "Do gift cards expire?",
    "Are you open on Sundays?",
]
TOLERANCE = 0.3  # nats, per token
# The greedy tokens, each with the log-probabilities of the 5 likeliest tokens at its place.
Tokens = list[tuple[str, dict[str, float]]]


def _ask(client: openai.OpenAI, question: str) -> tuple[Tokens, int]:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=5,
    )
    usage, logprobs = reply.usage, reply.choices[0].logprobs
    assert usage is not None and usage.prompt_tokens_details is not None
    assert logprobs is not None and logprobs.content
    tokens = [
        (t.token, {top.token: top.logprob for top in t.top_logprobs}) for t in logprobs.content
    ]
    return tokens, usage.prompt_tokens_details.cached_tokens or 0


def _burst(server: LiveServer) -> dict[str, tuple[Tokens, int]]:
    """The first question, and the others at once a moment later (while the first one's
    prompt is being computed), each from its own client."""
    barrier = threading.Barrier(len(QUESTIONS))
    answers: dict[str, tuple[Tokens, int]] = {}

    def one(question: str) -> None:
        client = openai.OpenAI(api_key="sk-x", base_url=server.base_url, max_retries=0)
        barrier.wait()
        if question != QUESTIONS[0]:
            time.sleep(0.01)
        answers[question] = _ask(client, question)

    threads = [threading.Thread(target=one, args=(q,)) for q in QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _server(root: Path, *args: str) -> LiveServer:
    return LiveServer(root, args=["--engine.slot_context", "1024", *args])


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Tokens]]:
    """Each answer from a one-slot server, one request at a time."""
    with _server(tmp_path_factory.mktemp("alone"), "--engine.slots", "1").running() as server:
        client = openai.OpenAI(api_key="sk-x", base_url=server.base_url, max_retries=0)
        yield {q: _ask(client, q)[0] for q in QUESTIONS}


def _same(shared: Tokens, alone: Tokens) -> bool:
    """Each token the request chose alone is among the 5 likeliest in the shared run too, with
    a log-probability within ``TOLERANCE``, up to and including the first place where the two
    chose differently (two near-equal candidates may swap)."""
    for (token, top), (other, expected) in zip(shared, alone, strict=False):
        if other not in top or abs(top[other] - expected[other]) > TOLERANCE:
            return False
        if token != other:
            break
    return True


@pytest.mark.parametrize("unified", [False, True], ids=["streams", "unified"])
def test_a_shared_prefix_is_computed_once_and_changes_no_answer(
    tmp_path: Path, alone: dict[str, Tokens], unified: bool
) -> None:
    args = ["--engine.slots", "4", "--engine.kv_unified", str(unified).lower()]
    with _server(tmp_path, *args).running() as server:
        answers = _burst(server)
    differ = {q: (got, alone[q]) for q, (got, _) in answers.items() if not _same(got, alone[q])}
    assert differ == {}
    cached = {q: n for q, (_, n) in answers.items()}
    assert cached[QUESTIONS[0]] == 0 and all(cached[q] > 200 for q in QUESTIONS[1:]), cached
