"""Chat Completions in-process on the fake engine: parameters, streaming and errors."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.api.common import check_context
from serverroom.engine.fake import FakeEngine

MSG = [{"role": "user", "content": "hi"}]


def test_basic_shape(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model="gpt-4.1", messages=MSG)  # type: ignore[arg-type]
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4.1"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens == len(choice.message.content or "")  # one byte, one token


def test_all_roles_and_text_parts(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "really"}]},
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "w", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        user="u1",
        metadata={"k": "v"},
    )
    assert completion.choices[0].message.content


def test_max_tokens_length(sdk: openai.OpenAI) -> None:
    for kwargs in ({"max_tokens": 5}, {"max_completion_tokens": 5}):
        completion = sdk.chat.completions.create(model="gpt-4.1", messages=MSG, **kwargs)  # type: ignore[arg-type]
        assert completion.choices[0].finish_reason == "length"
        assert completion.usage is not None and completion.usage.completion_tokens == 5
        assert len(completion.choices[0].message.content or "") == 5


def test_stop_sequences(sdk: openai.OpenAI) -> None:
    full = sdk.chat.completions.create(model="gpt-4.1", messages=MSG, temperature=0)  # type: ignore[arg-type]
    text = full.choices[0].message.content or ""
    word = text.split()[2]
    for stop in (word, [word, "zzz"]):
        cut = sdk.chat.completions.create(
            model="gpt-4.1",
            messages=MSG,
            temperature=0,
            stop=stop,  # type: ignore[arg-type]
        )
        assert cut.choices[0].message.content == text[: text.index(word)]
        assert cut.choices[0].finish_reason == "stop"


def test_seed_is_reproducible_and_n(sdk: openai.OpenAI) -> None:
    a = sdk.chat.completions.create(model="gpt-4.1", messages=MSG, seed=7, n=3)  # type: ignore[arg-type]
    b = sdk.chat.completions.create(model="gpt-4.1", messages=MSG, seed=7, n=3)  # type: ignore[arg-type]
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    assert len({c.message.content for c in a.choices}) > 1
    assert a.system_fingerprint == b.system_fingerprint


def test_logprobs(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        logprobs=True,
        top_logprobs=3,
        max_tokens=4,  # type: ignore[arg-type]
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert len(logprobs.content) == 4
    assert all(len(t.top_logprobs) == 3 for t in logprobs.content)
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content


def test_logit_bias_forces_token(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        logit_bias={"65": 100},
        max_tokens=3,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content == "AAA"


def test_penalties_and_sampling_accepted(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        temperature=0.5,
        top_p=0.9,  # type: ignore[arg-type]
        presence_penalty=1,
        frequency_penalty=-1,
        extra_body={"top_k": 5, "anything": True},
    )
    assert completion.choices[0].message.content


def test_stream_shape(client: TestClient) -> None:
    body = {
        "model": "gpt-4.1",
        "messages": MSG,
        "stream": True,
        "n": 2,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in reply.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    roles = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("role")]
    assert sorted(c["choices"][0]["index"] for c in roles) == [0, 1]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    finishes = [
        c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["stop", "stop"]


def test_stream_sdk_helper(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.stream(model="gpt-4.1", messages=MSG) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].message.content


def test_stream_without_usage_has_no_usage_chunk(client: TestClient) -> None:
    body = {"model": "gpt-4.1", "messages": MSG, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        chunks = [json.loads(x[6:]) for x in reply.iter_lines() if x and x != "data: [DONE]"]
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"presence_penalty": 9}, "presence_penalty"),
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 500}}, "logit_bias"),
        ({"logit_bias": {"999999": 5}}, "logit_bias"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        ({"top_logprobs": 30, "logprobs": True}, "top_logprobs"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
    ],
)
def test_bad_params_are_400_naming_param(
    sdk: openai.OpenAI, patch: dict[str, object], param: str
) -> None:
    body = {"model": "gpt-4.1", "messages": MSG, **patch}
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(**body)  # type: ignore[call-overload]
    assert info.value.status_code == 400
    assert info.value.param == param
    assert info.value.type == "invalid_request_error"


def test_missing_model_is_400(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", json={"messages": MSG})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "model"
    assert reply.json()["error"]["code"] == "missing_required_parameter"


def test_invalid_json_is_400(client: TestClient) -> None:
    reply = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_model_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.chat.completions.create(model="gpt-9", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


def test_context_length_exceeded(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "x" * 10_000}]
        )
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "x" * 5000}], max_tokens=4096
        )
    assert info.value.code == "context_length_exceeded"


def test_max_tokens_above_the_model_limit(sdk: openai.OpenAI) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(model="gpt-4.1", messages=MSG, **{field: 100_000})  # type: ignore[call-overload]
        assert info.value.code == "invalid_value"
        assert info.value.param == field
        assert "supports at most 4096 completion tokens" in info.value.message


def test_unlimited_reply_uses_at_most_half_the_context() -> None:
    engine = FakeEngine(context_length=256)
    assert check_context(engine, 10, None, param="messages", what="messages") == 128
    assert check_context(engine, 200, None, param="messages", what="messages") == 56
    capped = check_context(engine, 10, None, param="messages", what="messages", model_cap=100)
    assert capped == 100
    assert check_context(engine, 10, 200, param="messages", what="messages") == 200


def test_request_id_on_every_reply(client: TestClient) -> None:
    for reply in (
        client.get("/v1/models"),
        client.post("/v1/chat/completions", json={"model": "nope", "messages": MSG}),
        client.get("/v1/does-not-exist"),
    ):
        assert reply.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("with_usage", [False, True])
@pytest.mark.parametrize("index", [0, 3])
def test_plain_content_chunks_match_the_sdk_model_path(with_usage: bool, index: int) -> None:
    from types import SimpleNamespace

    from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

    from serverroom.api.chat.stream import _chunk, _ContentChunk
    from serverroom.api.common import ChoicesPlan

    unused: Any = None  # neither the generation nor the ticket is needed to render a chunk
    entry: Any = SimpleNamespace(id="gpt-4.1")
    plan: Any = ChoicesPlan(entry, unused, completion_id="chatcmpl-x", created=1, ticket=unused)
    fast = _ContentChunk(plan, index, with_usage)
    for text in ("Hi", "", ' "quoted" \\ back', "line\nbreak\t", "héllo — 日本 🙂", "\x00\x1f"):
        choice = Choice(index=index, delta=ChoiceDelta(content=text), finish_reason=None)
        assert fast(text) == _chunk(plan, [choice], with_usage)
