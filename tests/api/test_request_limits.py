"""Request limits: bodies, items and tools beyond the configured bounds are refused in the
platform's envelope before any work starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import RequestLimits
from tests.conftest import fake_settings

LIMITS = RequestLimits(max_body_bytes=4096, max_items=5, max_tools=2)
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
RESPONSES_TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(fake_settings(tmp_path, requests=LIMITS))) as client:
        yield client


def _messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"hi {i}"} for i in range(n)]


def test_a_body_over_the_limit_is_a_413(limited: TestClient) -> None:
    big = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x" * 5000}]}
    reply = limited.post("/v1/chat/completions", json=big)
    assert reply.status_code == 413 and "x-request-id" in reply.headers
    error = reply.json()["error"]
    assert error["code"] == "payload_too_large" and "4096 bytes" in error["message"]


def test_a_chunked_body_over_the_limit_is_a_413(limited: TestClient) -> None:
    body = json.dumps({"model": "gpt-4.1", "input": "y" * 5000}).encode()
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    reply = limited.post(
        "/v1/responses", content=chunks, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413
    small = json.dumps({"model": "gpt-4.1", "input": "hi"}).encode()
    ok = limited.post(
        "/v1/responses", content=iter([small]), headers={"content-type": "application/json"}
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"messages": _messages(6)}, "messages"),
        ("/v1/chat/completions", {"messages": _messages(1), "tools": [TOOL] * 3}, "tools"),
        ("/v1/responses", {"input": _messages(6)}, "input"),
        ("/v1/responses", {"input": "hi", "tools": [RESPONSES_TOOL] * 3}, "tools"),
        ("/v1/responses/input_tokens", {"input": _messages(6)}, "input"),
        ("/v1/completions", {"prompt": ["a"] * 6}, "prompt"),
    ],
)
def test_too_many_items_is_a_400_naming_the_limit(
    limited: TestClient, path: str, body: dict[str, object], param: str
) -> None:
    reply = limited.post(path, json={"model": "gpt-4.1", **body})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert "at most" in error["message"]


def test_an_over_long_list_is_refused_before_its_items_are_validated(limited: TestClient) -> None:
    # Six messages that are each invalid: the count is refused first (the items are never
    # validated), while five invalid ones get the validation error of the first.
    bad = [{"role": "nobody"}] * 6
    reply = limited.post("/v1/chat/completions", json={"model": "gpt-4.1", "messages": bad})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "array_above_max_length"
    reply = limited.post("/v1/chat/completions", json={"model": "gpt-4.1", "messages": bad[:5]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "messages[0].role"
    token_prompt = {"model": "gpt-4.1", "prompt": [1, 2, 3, 4, 5, 6, 7], "max_tokens": 1}
    assert limited.post("/v1/completions", json=token_prompt).status_code == 200  # one prompt


def test_within_the_limits_everything_is_served(limited: TestClient) -> None:
    chat = {"model": "gpt-4.1", "messages": _messages(5), "tools": [TOOL] * 2}
    assert limited.post("/v1/chat/completions", json=chat).status_code == 200
    assert (
        limited.post("/v1/responses", json={"model": "gpt-4.1", "input": _messages(5)}).status_code
        == 200
    )
