"""The Responses API's WebSocket mode: raw messages through the in-process app, and the
official SDK's ``responses.connect()`` against a real ``serverroom serve`` (fake engine)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from tests.live.server import LiveServer

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _until_done(socket: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(socket.receive_text())
        events.append(event)
        if event["type"] in (*TERMINAL, "error"):
            return events


def test_create_streams_every_event_then_the_next_create(client: TestClient) -> None:
    with client.websocket_connect("/v1/responses") as socket:
        socket.send_text(
            json.dumps({"type": "response.create", "model": "gpt-4o-mini", "input": "Hi"})
        )
        first = _until_done(socket)
        kinds = [e["type"] for e in first]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
        numbers = [e["sequence_number"] for e in first]
        assert numbers == list(range(len(first)))
        done = first[-1]["response"]
        assert done["status"] == "completed" and done["output"][0]["type"] == "message"
        # The connection serves the next response, chained onto the first.
        socket.send_text(
            json.dumps(
                {
                    "type": "response.create",
                    "model": "gpt-4o-mini",
                    "input": "Again",
                    "previous_response_id": done["id"],
                    "stream_id": "lane-1",
                }
            )
        )
        second = _until_done(socket)
        assert second[-1]["type"] == "response.completed"
        assert all(e["stream_id"] == "lane-1" for e in second)
        assert second[-1]["response"]["previous_response_id"] == done["id"]
    stored = client.get(f"/v1/responses/{second[-1]['response']['id']}")
    assert stored.status_code == 200


@pytest.mark.parametrize(
    ("event", "status", "param"),
    [
        ({"type": "response.create", "input": "x"}, 400, "model"),
        (
            {"type": "response.create", "model": "gpt-4o-mini", "input": "x", "temperature": 9},
            400,
            "temperature",
        ),
        ({"type": "response.create", "model": "no-such-model", "input": "x"}, 404, "model"),
        (
            {"type": "response.create", "model": "gpt-4o-mini", "input": "x", "background": True},
            400,
            "background",
        ),
        (
            {"type": "response.create", "model": "gpt-4o-mini", "input": "x", "generate": False},
            400,
            "generate",
        ),
        ({"type": "session.update"}, 400, "type"),
    ],
)
def test_bad_events_get_an_error_event_and_the_socket_stays_open(
    client: TestClient, event: dict[str, Any], status: int, param: str
) -> None:
    with client.websocket_connect("/v1/responses") as socket:
        socket.send_text(json.dumps(event))
        error = json.loads(socket.receive_text())
        assert error["type"] == "error" and error["status"] == status
        assert error["error"]["param"] == param and error["error"]["message"]
        socket.send_text("{not json")
        assert json.loads(socket.receive_text())["status"] == 400
        socket.send_text(
            json.dumps({"type": "response.create", "model": "gpt-4o-mini", "input": "ok"})
        )
        assert _until_done(socket)[-1]["type"] == "response.completed"


def test_steering_is_refused_with_steer_failed(client: TestClient) -> None:
    with client.websocket_connect("/v1/responses") as socket:
        steer = {"type": "response.steer", "input": "faster", "previous_response_id": "resp_x"}
        socket.send_text(json.dumps(steer))
        failed = json.loads(socket.receive_text())
        assert failed["type"] == "response.steer.failed"
        assert failed["error"]["code"] == "steering_not_supported"
        assert failed["steer"]["input"] == "faster"


def test_a_socket_needs_a_valid_key_when_keys_are_enforced(tmp_path: Path) -> None:
    from serverroom.app import create_app
    from serverroom.settings import AuthSettings
    from tests.conftest import fake_settings

    settings = fake_settings(tmp_path, auth=AuthSettings(mode="keys"))
    with (
        TestClient(create_app(settings)) as client,
        client.websocket_connect(
            "/v1/responses", headers={"Authorization": "Bearer sk-wrong"}
        ) as socket,
    ):
        error = json.loads(socket.receive_text())
        assert error["type"] == "error" and error["status"] == 401
        assert error["error"]["code"] == "invalid_api_key"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(
        tmp_path_factory.mktemp("ws"), args=["--engine.kind", "fake"]
    ).running() as server:
        yield server


def test_the_sdk_connects_and_creates_responses(served: LiveServer) -> None:
    client = openai.OpenAI(base_url=served.base_url, api_key=served.api_key)
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-4o-mini", input="Say hello.")
        kinds, text, first_id = [], "", ""
        for event in connection:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                first_id = event.response.id
                assert event.response.output_text == text
                break
        assert kinds[0] == "response.created" and text
        connection.response.create(
            model="gpt-4o-mini", input="And again.", previous_response_id=first_id
        )
        for event in connection:
            if event.type == "response.completed":
                assert event.response.previous_response_id == first_id
                break
        connection.response.create(model="gpt-4o-mini", input="x", temperature=9)
        error = connection.recv()
        assert error.type == "error" and error.status == 400  # type: ignore[union-attr]
    assert client.responses.retrieve(first_id).status == "completed"
