"""Legacy Completions in-process on the fake engine."""

from __future__ import annotations

import json
import time

import openai
import pytest
from fastapi.testclient import TestClient


def test_default_max_tokens_is_16(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(model="gpt-4.1", prompt="Once upon a time")
    assert completion.object == "text_completion"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 16
    assert completion.usage.prompt_tokens == len("Once upon a time")


def test_list_prompts_and_n_numbering(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(
        model="gpt-4.1", prompt=["a", "b"], n=2, max_tokens=3, seed=1
    )
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]


def test_token_prompts(sdk: openai.OpenAI) -> None:
    one = sdk.completions.create(model="gpt-4.1", prompt=[72, 105], max_tokens=2)
    many = sdk.completions.create(model="gpt-4.1", prompt=[[72], [105, 33]], max_tokens=2)
    assert one.usage is not None and one.usage.prompt_tokens == 2
    assert many.usage is not None and many.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError):
        sdk.completions.create(model="gpt-4.1", prompt=[10**7], max_tokens=2)


def test_echo_logprobs_stop(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(
        model="gpt-4.1", prompt="Hi", echo=True, logprobs=2, max_tokens=4, temperature=0
    )
    choice = completion.choices[0]
    assert choice.text.startswith("Hi")
    assert choice.logprobs is not None and len(choice.logprobs.tokens or []) == 4
    assert all(len(t) == 2 for t in choice.logprobs.top_logprobs or [])
    full = sdk.completions.create(model="gpt-4.1", prompt="Hi", max_tokens=40, temperature=0)
    word = full.choices[0].text.split()[1]
    cut = sdk.completions.create(
        model="gpt-4.1", prompt="Hi", max_tokens=40, temperature=0, stop=word
    )
    assert cut.choices[0].text == full.choices[0].text[: full.choices[0].text.index(word)]


def test_stream(client: TestClient) -> None:
    body = {
        "model": "gpt-4.1",
        "prompt": "x",
        "stream": True,
        "max_tokens": 5,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/v1/completions", json=body) as reply:
        lines = [line for line in reply.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(x[6:]) for x in lines[:-1]]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert len(text) == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.completions.create(model="gpt-4.1", prompt="x", logprobs=9)
    assert info.value.param == "logprobs"
    with pytest.raises(openai.BadRequestError) as info:
        sdk.completions.create(model="gpt-4.1", prompt="x" * 10_000)
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "prompt"
    with pytest.raises(openai.NotFoundError):
        sdk.completions.create(model="nope", prompt="x")


@pytest.mark.parametrize(
    ("prompt", "ok"),
    [
        ([1, 2, 3], True),
        ([[1, 2], [3]], True),
        (["a", "b"], True),
        ([1, "a"], False),
        ([[1], "a"], False),
        ([True, 1], False),
        ({"a": 1}, False),
    ],
)
def test_prompt_shapes(client: TestClient, prompt: object, ok: bool) -> None:
    reply = client.post(
        "/v1/completions", json={"model": "gpt-4.1", "prompt": prompt, "max_tokens": 1}
    )
    assert reply.status_code == (200 if ok else 400), reply.text
    if not ok:
        assert reply.json()["error"]["param"] == "prompt"


def test_a_huge_mixed_prompt_array_is_refused_at_once(client: TestClient) -> None:
    # Pydantic's union built one error per element (a 385 MB message for 1,000,000 ids).
    prompt: list[object] = [*range(1_000_000), "x"]
    started = time.perf_counter()
    reply = client.post("/v1/completions", json={"model": "gpt-4.1", "prompt": prompt})
    assert reply.status_code == 400 and len(reply.content) < 1000
    assert time.perf_counter() - started < 10
