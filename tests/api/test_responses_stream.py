"""Streaming Responses (`stream: true`): event order, sequence numbers, the SDK helper, storage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from serverroom.app import create_app
from serverroom.engine.base import (
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptProcessed,
    SampledToken,
)
from serverroom.engine.fake import FakeEngine
from tests.conftest import fake_settings

EVENTS = TypeAdapter[Any](ResponseStreamEvent)


def read_events(client: TestClient, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event line, data) pairs of a streamed response."""
    out: list[tuple[str, dict[str, Any]]] = []
    with client.stream("POST", "/v1/responses", json={**payload, "stream": True}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                assert line != "data: [DONE]"
                out.append((name, json.loads(line[len("data: ") :])))
    return out


def test_event_order(client: TestClient) -> None:
    events = read_events(client, {"model": "gpt-4.1", "input": "hi"})
    types = [data["type"] for _, data in events]
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = types.count("response.output_text.delta")
    assert deltas > 1
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    for _, data in events:
        EVENTS.validate_python(data)
    created, in_progress = events[0][1], events[1][1]
    final = events[-1][1]["response"]
    assert created["response"]["status"] == "in_progress" and created["response"]["output"] == []
    assert created["response"]["id"] == in_progress["response"]["id"] == final["id"]
    added = events[2][1]
    item_id = added["item"]["id"]
    assert added["item"]["status"] == "in_progress" and added["item"]["content"] == []
    assert events[3][1]["part"] == {
        "type": "output_text",
        "text": "",
        "annotations": [],
        "logprobs": [],
    }
    text = "".join(d["delta"] for _, d in events if d["type"] == "response.output_text.delta")
    for _, data in events[3:-1]:
        assert data.get("item_id", item_id) == item_id
        assert data["output_index"] == 0
    assert events[-4][1]["text"] == text
    assert events[-3][1]["part"]["text"] == text
    done_item = events[-2][1]["item"]
    assert done_item["id"] == item_id and done_item["status"] == "completed"
    assert final["status"] == "completed" and final["output"][0]["id"] == item_id
    assert final["usage"]["output_tokens"] > 0


def test_incomplete_stream_ends_with_incomplete(client: TestClient) -> None:
    events = read_events(client, {"model": "gpt-4.1", "input": "hi", "max_output_tokens": 3})
    last = events[-1][1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2][1]["item"]["status"] == "incomplete"


def test_sdk_stream_helper(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-4.1", input="hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == text and final.status == "completed"
    stored = sdk.responses.retrieve(final.id)
    assert stored.output_text == text
    assert stored.usage == final.usage


def test_raw_sdk_stream(sdk: openai.OpenAI) -> None:
    stream = sdk.responses.create(model="gpt-4.1", input="hi", stream=True)
    types = [event.type for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed"


def test_stream_errors_before_first_token_are_http(sdk: openai.OpenAI) -> None:
    try:
        sdk.responses.create(model="nope", input="hi", stream=True)
    except openai.NotFoundError as exc:
        assert exc.code == "model_not_found"
    else:
        raise AssertionError("expected a 404")


def test_streamed_unstored(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-4.1", input="hi", store=False) as stream:
        final = stream.get_final_response()
    try:
        sdk.responses.retrieve(final.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("store=false must not be stored")


def test_streamed_chain(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-4.1", input="one") as stream:
        first = stream.get_final_response()
    second = sdk.responses.create(model="gpt-4.1", input="two", previous_response_id=first.id)
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens


class FailingEngine(FakeEngine):
    """Sends a few tokens, then fails."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        yield PromptProcessed(cached_tokens=0)
        for token in b"Hello":
            yield SampledToken(token)
        yield GenerationStats("error", len(request.prompt), 0, 5, error="boom")


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(fake_settings(tmp_path), engine_factory=lambda entry: FailingEngine())
    with TestClient(app) as client:
        yield client


def test_failure_mid_stream(failing: TestClient) -> None:
    events = read_events(failing, {"model": "gpt-4.1", "input": "hi"})
    types = [data["type"] for _, data in events]
    assert types[0] == "response.created" and types[-1] == "response.failed"
    assert "response.output_item.done" in types
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error" and "boom" in failed["error"]["message"]
    stored = failing.get(f"/v1/responses/{failed['id']}").json()
    assert stored["status"] == "failed" and stored["output"][0]["content"][0]["text"] == "Hello"
    assert failed["usage"]["output_tokens"] == 5  # the tokens generated (and billed) before it


def test_failure_without_stream_is_500(failing: TestClient) -> None:
    reply = failing.post("/v1/responses", json={"model": "gpt-4.1", "input": "hi"})
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "engine_error"


def test_logprobs_when_included(client: TestClient, sdk: openai.OpenAI) -> None:
    payload = {
        "model": "gpt-4.1",
        "input": "hi",
        "include": ["message.output_text.logprobs"],
        "top_logprobs": 2,
        "max_output_tokens": 6,
    }
    events = read_events(client, payload)
    deltas = [d for _, d in events if d["type"] == "response.output_text.delta"]
    assert all(len(d["logprobs"]) == 1 for d in deltas)
    assert len(deltas[0]["logprobs"][0]["top_logprobs"]) == 2
    done = next(d for _, d in events if d["type"] == "response.output_text.done")
    assert len(done["logprobs"]) == 6
    response = sdk.responses.create(**payload)  # type: ignore[arg-type]
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs is not None and len(part.logprobs) == 6  # type: ignore[union-attr]
    assert part.logprobs[0].bytes  # type: ignore[union-attr]
    plain = sdk.responses.create(model="gpt-4.1", input="hi", max_output_tokens=3)
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]


def test_events_are_built_from_their_own_class() -> None:
    """Per-token events skip the SDK's 59-member union (no pydantic discriminator: slow)."""
    from typing import get_args

    from openai.types.responses import ResponseStreamEvent, ResponseTextDeltaEvent

    from serverroom.api.responses.events import _EVENTS

    assert len(_EVENTS) == len(get_args(get_args(ResponseStreamEvent)[0]))
    assert _EVENTS["response.output_text.delta"] is ResponseTextDeltaEvent


class EarlyFailingEngine(FakeEngine):
    """Fails before its first token."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        yield GenerationStats("error", len(request.prompt), 0, 0, error="no slot")


def test_streamed_background_failing_before_first_token(tmp_path: Path) -> None:
    """The stream of a background run that fails early still starts and ends properly."""
    app = create_app(fake_settings(tmp_path), engine_factory=lambda entry: EarlyFailingEngine())
    with TestClient(app) as client:
        body = {"model": "gpt-4.1", "input": "hi", "background": True}
        events = read_events(client, body)
        types = [data["type"] for _, data in events]
        assert types == ["response.created", "response.failed"]
        assert [data["sequence_number"] for _, data in events] == [0, 1]
        failed = events[-1][1]["response"]
        assert failed["error"]["code"] == "server_error"
        assert client.get(f"/v1/responses/{failed['id']}").json()["status"] == "failed"
