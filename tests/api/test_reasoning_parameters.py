"""The platform's parameter rules for reasoning models (``o3`` in the built-in catalog): only
the default temperature and top_p, ``max_completion_tokens`` rather than Chat's ``max_tokens``,
and a reasoning effort only on a reasoning model."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}


def _error(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post(path, json=body)
    assert reply.status_code == 400, reply.text
    return dict(reply.json()["error"])


@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_o3_takes_only_the_default_sampling(client: TestClient, name: str) -> None:
    for path, body in (("/v1/responses", {"input": "Hi"}), ("/v1/chat/completions", CHAT)):
        error = _error(client, path, {"model": "o3", name: 0.5, **body})
        assert error["param"] == name and error["code"] == "unsupported_value"
        assert error["message"] == (
            f"Unsupported value: '{name}' does not support 0.5 with this model. Only the"
            " default (1) value is supported."
        )
        ok = client.post(path, json={"model": "o3", name: 1, **body})
        assert ok.status_code == 200, ok.text


def test_o3_on_chat_wants_max_completion_tokens(client: TestClient) -> None:
    error = _error(client, "/v1/chat/completions", {"model": "o3", "max_tokens": 20, **CHAT})
    assert error == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model."
        " Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
    body = {"model": "o3", "max_completion_tokens": 20, "reasoning_effort": "low", **CHAT}
    assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_reasoning_effort_only_on_reasoning_models(client: TestClient) -> None:
    error = _error(
        client,
        "/v1/responses",
        {"model": "gpt-4.1", "input": "Hi", "reasoning": {"effort": "low"}},
    )
    assert error["param"] == "reasoning.effort" and error["code"] == "unsupported_parameter"
    error = _error(
        client, "/v1/chat/completions", {"model": "gpt-4o", "reasoning_effort": "low", **CHAT}
    )
    assert error["param"] == "reasoning_effort"
    ok = client.post(
        "/v1/responses", json={"model": "o3", "input": "Hi", "reasoning": {"effort": "high"}}
    )
    assert ok.status_code == 200 and ok.json()["reasoning"]["effort"] == "high"


def test_an_unknown_effort_is_a_400(client: TestClient) -> None:
    body = {"model": "o3", "input": "Hi", "reasoning": {"effort": "extreme"}}
    error = _error(client, "/v1/responses", body)
    assert error["param"] == "reasoning.effort" and error["code"] == "invalid_value"


def test_other_models_keep_their_sampling(client: TestClient) -> None:
    body = {"model": "gpt-4.1", "max_tokens": 5, "temperature": 0.2, **CHAT}
    assert client.post("/v1/chat/completions", json=body).status_code == 200
