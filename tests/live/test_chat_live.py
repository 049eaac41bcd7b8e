"""Chat and legacy Completions against a real server and the bundled model, via the SDK."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live
MSG = [{"role": "user", "content": "Name three colors."}]


def test_seed_snippet_verbatim(live_env: LiveServer) -> None:
    """The seed's Chat Completions snippet, unchanged; only the environment is set."""
    snippet = (
        "from openai import OpenAI\n"
        "client = OpenAI()\n"
        "completion = client.chat.completions.create(\n"
        '    model="gpt-4.1",\n'
        "    messages=[\n"
        '        {"role": "user", "content": '
        '"Write a one-sentence bedtime story about a unicorn."}\n'
        "    ]\n"
        ")\n"
        "print(completion.choices[0].message.content)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300, check=True
    )
    assert len(out.stdout.strip()) > 10


def test_stream_with_usage(live_client: openai.OpenAI) -> None:
    stream = live_client.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        stream=True,
        max_tokens=20,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert 0 < usage.completion_tokens <= 20
    assert text.strip()


def test_n_and_seed_determinism(live_client: openai.OpenAI) -> None:
    kwargs = {"model": "gpt-4.1", "messages": MSG, "max_tokens": 24, "seed": 42, "temperature": 0.9}
    a = live_client.chat.completions.create(n=2, **kwargs)  # type: ignore[call-overload]
    assert [c.index for c in a.choices] == [0, 1]
    first = live_client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    second = live_client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert first.choices[0].message.content == second.choices[0].message.content


def test_stop_and_length(live_client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    full = live_client.chat.completions.create(
        model="gpt-4.1",
        messages=messages,
        temperature=0,
        max_tokens=40,  # type: ignore[arg-type]
    )
    text = full.choices[0].message.content or ""
    assert len(text) > 4
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    cut = live_client.chat.completions.create(
        model="gpt-4.1",
        messages=messages,
        temperature=0,
        max_tokens=40,
        stop=[stop],  # type: ignore[arg-type]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in (cut.choices[0].message.content or "")
    assert text.startswith(cut.choices[0].message.content or "")
    short = live_client.chat.completions.create(model="gpt-4.1", messages=MSG, max_tokens=3)  # type: ignore[arg-type]
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 3


def test_logprobs(live_client: openai.OpenAI) -> None:
    reply = live_client.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        max_tokens=5,
        logprobs=True,
        top_logprobs=3,  # type: ignore[arg-type]
        temperature=0,
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 5
    for token in content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 3
        assert token.top_logprobs[0].logprob >= token.top_logprobs[-1].logprob
        assert abs(token.top_logprobs[0].logprob - token.logprob) < 1e-4  # greedy = top-1


def test_errors(live_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        live_client.chat.completions.create(model="gpt-5-ultra", messages=MSG)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as bad:
        live_client.chat.completions.create(model="gpt-4.1", messages=MSG, temperature=7)  # type: ignore[arg-type]
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as big:
        live_client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hello " * 9000}]
        )
    assert big.value.code == "context_length_exceeded"


def test_legacy_completions(live_client: openai.OpenAI) -> None:
    reply = live_client.completions.create(
        model="gpt-4.1", prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2
    )
    assert reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens <= 8
    chunks = list(
        live_client.completions.create(model="gpt-4.1", prompt="Hello", max_tokens=6, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices)
