"""POST /v1/responses with the fake engine: the Response object, parameters and errors."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.responses import Response

from serverroom.app import create_app
from serverroom.settings import EngineSettings
from tests.conftest import fake_settings


def test_string_input_roundtrip(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-4.1", input="Tell me a story.")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text
    item = response.output[0]
    assert item.type == "message" and item.id.startswith("msg_")
    assert item.role == "assistant" and item.status == "completed"
    part = item.content[0]
    assert part.type == "output_text" and part.annotations == []
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert response.incomplete_details is None and response.error is None
    assert response.completed_at is not None


def test_wire_fields(client: TestClient) -> None:
    reply = client.post("/v1/responses", json={"model": "gpt-4.1", "input": "hi"})
    assert reply.status_code == 200
    body = reply.json()
    for key in (
        "id", "object", "created_at", "status", "model", "output", "error", "incomplete_details",
        "instructions", "metadata", "temperature", "top_p", "tool_choice", "tools",
        "parallel_tool_calls", "usage", "store", "truncation", "text", "background",
        "previous_response_id", "max_output_tokens", "user", "safety_identifier", "reasoning",
    ):  # fmt: skip
        assert key in body, key
    assert body["store"] is True and body["truncation"] == "disabled"
    assert body["text"]["format"] == {"type": "text"}
    assert body["metadata"] == {} and body["tools"] == [] and body["tool_choice"] == "auto"
    assert isinstance(body["created_at"], int)
    Response.model_validate(body)


def test_parameters_are_echoed(sdk: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    response = sdk.responses.create(
        model="gpt-4.1",
        input="hi",
        instructions="You are terse. Answer in JSON.",
        temperature=0,
        top_p=0.5,
        metadata={"topic": "weather"},
        user="u1",
        safety_identifier="s1",
        parallel_tool_calls=False,
        tool_choice="none",
        tools=tools,  # type: ignore[arg-type]
        text={"format": {"type": "json_object"}},
        include=["message.output_text.logprobs"],
        truncation="auto",
        max_output_tokens=50,
    )
    assert response.instructions == "You are terse. Answer in JSON."
    assert response.temperature == 0 and response.top_p == 0.5
    assert response.metadata == {"topic": "weather"}
    assert response.user == "u1" and response.safety_identifier == "s1"
    assert response.parallel_tool_calls is False and response.tool_choice == "none"
    assert response.tools[0].type == "function" and response.tools[0].name == "get_weather"
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_object"
    assert response.truncation == "auto" and response.max_output_tokens == 50


def test_json_object_needs_the_word_json(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="gpt-4.1", input="hi", text={"format": {"type": "json_object"}})
    assert info.value.param == "input" and info.value.code == "invalid_value"
    assert "'json'" in info.value.message
    said_in_history = sdk.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": "Reply with a JSON object."},
            {"role": "assistant", "content": "{}"},
            {"role": "user", "content": "Again."},
        ],
        text={"format": {"type": "json_object"}},
        max_output_tokens=20,
    )
    assert said_in_history.status in ("completed", "incomplete")


def test_message_list_input(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "developer", "content": "Be kind."},
            {"role": "system", "content": "Short answers."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            },
            {"role": "user", "content": "How are you?"},
        ],
    )
    assert response.status == "completed" and response.output_text
    items = sdk.responses.input_items.list(response.id, order="asc").data
    assert [getattr(i, "role", None) for i in items] == [
        "developer", "system", "user", "assistant", "user",
    ]  # fmt: skip


def test_function_call_items_are_rendered(sdk: openai.OpenAI) -> None:
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
    ]
    count = sdk.responses.input_tokens.count(model="gpt-4.1", input=items)  # type: ignore[arg-type]
    plain = sdk.responses.input_tokens.count(model="gpt-4.1", input="Weather in Paris?")
    assert count.input_tokens > plain.input_tokens
    response = sdk.responses.create(model="gpt-4.1", input=items)  # type: ignore[arg-type]
    stored = sdk.responses.input_items.list(response.id, order="asc")
    assert [i.type for i in stored.data] == ["message", "function_call", "function_call_output"]


def test_output_items_can_be_sent_back(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="gpt-4.1", input="hi")
    history = [{"role": "user", "content": "hi"}, *[o.model_dump() for o in first.output]]
    history.append({"role": "user", "content": "again"})
    second = sdk.responses.create(model="gpt-4.1", input=history, store=False)  # type: ignore[arg-type]
    assert second.status == "completed"


def test_max_output_tokens_incomplete(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-4.1", input="hi", max_output_tokens=5)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 5
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert len(response.output_text) == 5


def test_max_output_tokens_above_the_model_limit(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="gpt-4.1", input="hi", max_output_tokens=100_000)
    assert info.value.code == "invalid_value"
    assert info.value.param == "max_output_tokens"


def test_input_tokens(client: TestClient) -> None:
    reply = client.post(
        "/v1/responses/input_tokens",
        json={"model": "gpt-4.1", "input": "hello", "instructions": "sys"},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "response.input_tokens" and body["input_tokens"] > 5


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "gpt-4.1"}, "input"),
        ({"model": "gpt-4.1", "input": 5}, "input"),
        ({"model": "gpt-4.1", "input": "hi", "temperature": 3}, "temperature"),
        ({"model": "gpt-4.1", "input": "hi", "top_p": 2}, "top_p"),
        ({"model": "gpt-4.1", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "gpt-4.1", "input": "hi", "truncation": "maybe"}, "truncation"),
        ({"model": "gpt-4.1", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "gpt-4.1", "input": [{"role": "user"}]}, "input[0].content"),
        ({"model": "gpt-4.1", "input": [{"type": "bogus"}]}, "input[0].type"),
        ({"model": "gpt-4.1", "input": ["x"]}, "input[0]"),
        (
            {"model": "gpt-4.1", "input": [{"type": "function_call", "call_id": "c"}]},
            "input[0].name",
        ),
        (
            {
                "model": "gpt-4.1",
                "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
            },
            "input[0].content[0].type",
        ),
        (
            {"model": "gpt-4.1", "input": "hi", "metadata": {str(i): "v" for i in range(17)}},
            "metadata",
        ),
        ({"model": "gpt-4.1", "input": "hi", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"model": "gpt-4.1", "input": "hi", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"model": "gpt-4.1", "input": "hi", "background": True, "store": False}, "background"),
        (
            {"model": "gpt-4.1", "input": "hi", "text": {"format": {"type": "nope"}}},
            "text.format",
        ),
        (
            {"model": "gpt-4.1", "input": "hi", "previous_response_id": "r", "conversation": "c"},
            "conversation",
        ),
    ],
)
def test_validation_errors(client: TestClient, payload: dict[str, object], param: str) -> None:
    reply = client.post("/v1/responses", json=payload)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param), error


def test_unknown_model(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.responses.create(model="no-such-model", input="hi")
    assert info.value.code == "model_not_found"


@pytest.fixture
def small_sdk(tmp_path: Path) -> openai.OpenAI:
    settings = fake_settings(tmp_path, engine=EngineSettings(kind="fake", slot_context=256))
    client = TestClient(create_app(settings)).__enter__()
    return openai.OpenAI(
        api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
    )


def test_truncation_disabled_overflow(small_sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        small_sdk.responses.create(model="gpt-4.1", input="x" * 400)
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "input"


def test_truncation_auto_drops_oldest(small_sdk: openai.OpenAI) -> None:
    items = [{"role": "user", "content": f"{i} " + "y" * 60} for i in range(8)]
    with pytest.raises(openai.BadRequestError):
        small_sdk.responses.create(model="gpt-4.1", input=items)  # type: ignore[arg-type]
    response = small_sdk.responses.create(
        model="gpt-4.1",
        input=items,  # type: ignore[arg-type]
        truncation="auto",
        max_output_tokens=20,
    )
    assert response.status in ("completed", "incomplete")
    assert response.usage is not None and response.usage.input_tokens + 20 <= 256


@pytest.mark.parametrize("context", [40, 90, 150, 400])
def test_truncation_auto_drops_the_fewest_items(context: int) -> None:
    """``truncation: auto`` keeps the longest suffix of items that fits (and renders few times)."""
    from typing import Any, cast

    from serverroom.api.items import normalize_input
    from serverroom.api.responses.prompt import PromptState, fit_prompt
    from serverroom.errors import ContextLengthExceededError

    class Engine:
        context_length = context
        renders = 0

        def render_chat(self, messages: list[Any]) -> str:
            Engine.renders += 1
            return "".join(f"<{m.role}>{m.content}" for m in messages)

        def tokenize(self, text: str, special: bool = False) -> list[int]:
            return list(text.encode())

        def tokenize_chat(self, messages: list[Any]) -> list[int]:
            return self.tokenize(self.render_chat(messages))

    items = normalize_input([{"role": "user", "content": f"{i}" * (5 + i)} for i in range(20)])
    engine = cast(Any, Engine())
    state = PromptState(history=items[:15], new=items[15:])
    # the longest suffix that fits, found the slow way
    kept = next(
        (
            k
            for k in range(len(items), 0, -1)
            if len(engine.tokenize(engine.render_chat(render(items[-k:])))) + 5 <= context
        ),
        0,
    )
    Engine.renders = 0
    if kept == 0:
        with pytest.raises(ContextLengthExceededError):
            fit_prompt(engine, None, state, max_output=5, truncation="auto")
        return
    prompt, budget = fit_prompt(engine, None, state, max_output=5, truncation="auto")
    assert budget == 5
    assert bytes(prompt).decode() == engine.render_chat(render(items[-kept:]))
    assert Engine.renders <= 8  # bisection, not one render per dropped item


def render(items: list[dict[str, object]]) -> list[object]:
    from serverroom.api.items import render_items

    return list(render_items(None, items))


def test_open_responses_fields(client: TestClient) -> None:
    """Fields the Open Responses schema (and OpenAI's spec) require on every reply."""
    loose = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    strict_ok = {
        "type": "function",
        "name": "g",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
        },
    }
    body = {
        "model": "gpt-4.1",
        "input": "hi",
        "tools": [loose, strict_ok, {**loose, "name": "h", "strict": False}],
        "tool_choice": "none",
        "presence_penalty": 0.5,
    }
    reply = client.post("/v1/responses", json=body).json()
    assert reply["presence_penalty"] == 0.5 and reply["frequency_penalty"] == 0.0
    # No strict given: strict when the schema allows it (the platform's default), else not.
    assert [t["strict"] for t in reply["tools"]] == [False, True, False]
    part = reply["output"][0]["content"][0]
    assert part["type"] == "output_text" and part["logprobs"] == []
    Response.model_validate(reply)
    bad = client.post("/v1/responses", json={**body, "frequency_penalty": 3})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "frequency_penalty"


def test_unknown_routes_and_methods_are_404(client: TestClient) -> None:
    for method, path in [("POST", "/v1/responses/summarize"), ("PUT", "/v1/models/gpt-4.1")]:
        reply = client.request(method, path, json={})
        assert reply.status_code == 404, (method, path)
        assert reply.json()["error"]["code"] == "unknown_url"
    deleted = client.delete("/v1/models/gpt-4.1")
    assert deleted.status_code == 403
    assert client.delete("/v1/models/no-such-model").json()["error"]["code"] == "model_not_found"
