"""The same request through Chat, legacy Completions and Responses behaves the same, because
all three render one generation layer: several choices run together, and logprobs come with
text when tools are offered (fake engine, in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import EngineSettings
from tests.conftest import fake_settings

MSG = [{"role": "user", "content": "hi"}]
CHAT_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
RESPONSES_TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[TestClient]:
    engine = EngineSettings(kind="fake", fake_delay=0.002)
    with TestClient(create_app(fake_settings(tmp_path, engine=engine))) as client:
        yield client


def _events(client: TestClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", path, json={**body, "stream": True}) as reply:
        assert reply.status_code == 200
        lines = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": MSG}),
        ("/v1/completions", {"prompt": "hi"}),
    ],
)
def test_choices_stream_together(slow: TestClient, path: str, body: dict[str, Any]) -> None:
    chunks = _events(slow, path, {"model": "gpt-4.1", "n": 2, "max_tokens": 30, **body})
    order = [c["choices"][0] for c in chunks if c["choices"]]
    first_finish = next(i for i, choice in enumerate(order) if choice["finish_reason"])
    assert {choice["index"] for choice in order[:first_finish]} == {0, 1}


def test_chat_logprobs_with_tools(client: TestClient) -> None:
    body = {
        "model": "gpt-4.1",
        "messages": MSG,
        "tools": [CHAT_TOOL],
        "logprobs": True,
        "max_tokens": 20,
    }
    done = client.post("/v1/chat/completions", json=body).json()["choices"][0]
    assert done["message"]["content"] and not done["message"].get("tool_calls")
    assert len(done["logprobs"]["content"]) > 0
    chunks = _events(client, "/v1/chat/completions", body)
    streamed = [c["choices"][0].get("logprobs") for c in chunks if c["choices"]]
    assert any(lp and lp["content"] for lp in streamed)


def test_responses_logprobs_with_tools(client: TestClient) -> None:
    body = {
        "model": "gpt-4.1",
        "input": "hi",
        "tools": [RESPONSES_TOOL],
        "include": ["message.output_text.logprobs"],
        "max_output_tokens": 20,
    }
    reply = client.post("/v1/responses", json=body).json()
    part = reply["output"][0]["content"][0]
    assert part["type"] == "output_text" and len(part["logprobs"]) > 0
    events = _events(client, "/v1/responses", body)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert deltas and any(e["logprobs"] for e in deltas)
