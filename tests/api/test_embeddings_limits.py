"""Embeddings request limits (real all-MiniLM-L6-v2, in-process): at most 2048 inputs, each
within the model's 254 tokens, at most 300,000 tokens summed over the request; anything else
is a 400 in the platform's envelope with ``param: "input"``, found without tokenizing or
embedding more than the limits allow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serverroom.api.embeddings import inputs
from serverroom.app import create_app
from tests.conftest import fake_settings

MODEL = "all-minilm-l6-v2"
HELLO = 7592  # "hello" in the model's WordPiece vocabulary


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("emb-limits")
    with TestClient(create_app(fake_settings(data_dir))) as test_client:
        yield test_client


def _post(client: TestClient, value: object) -> tuple[int, dict[str, object]]:
    reply = client.post(
        "/v1/embeddings", json={"model": MODEL, "input": value, "encoding_format": "base64"}
    )
    body = reply.json()
    return reply.status_code, body.get("error") or body


def _refused(client: TestClient, value: object, code: str) -> str:
    status, error = _post(client, value)
    assert status == 400, error
    assert error["type"] == "invalid_request_error" and error["param"] == "input", error
    assert error["code"] == code, error
    return str(error["message"])


def test_over_300000_tokens_in_a_request_is_a_400_with_the_total(client: TestClient) -> None:
    arrays = [[HELLO] * 254] * 1182  # 300,228 tokens, each input within its 254
    message = _refused(client, arrays, "max_tokens_per_request")
    assert message == "Requested 300228 tokens, max 300000 tokens per request."
    texts = ["hello " * 150] * 2048  # 307,200 tokens of text
    message = _refused(client, texts, "max_tokens_per_request")
    assert message == "Requested 307200 tokens, max 300000 tokens per request."


def test_the_request_limit_counts_every_input(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "MAX_REQUEST_TOKENS", 100)
    status, body = _post(client, ["hello " * 60, "hello " * 40])
    assert status == 200 and body["usage"] == {"prompt_tokens": 100, "total_tokens": 100}
    message = _refused(client, [[HELLO] * 60, [HELLO] * 41], "max_tokens_per_request")
    assert message == "Requested 101 tokens, max 100 tokens per request."


def test_an_input_over_the_context_is_refused_without_tokenizing_it_all(
    client: TestClient,
) -> None:
    started = time.perf_counter()
    message = _refused(client, "a." * 1_000_000, "context_length_exceeded")  # 2M tokens
    assert time.perf_counter() - started < 2  # tokenizing it all: ~4 s and ~1 GB
    assert "254 tokens per input" in message and "input[0] has more than 254" in message
    message = _refused(client, [[HELLO], [HELLO] * 255], "context_length_exceeded")
    assert "input[1] has 255 tokens" in message
    message = _refused(client, [HELLO] * 2_000_000, "context_length_exceeded")
    assert "input[0] has 2000000 tokens" in message


@pytest.mark.parametrize(
    "value",
    [
        5,
        {"text": "hi"},
        None,
        [None],
        [True, 1],
        [1.0],
        [[1], "a"],
        ["a", [1]],  # strings and token arrays do not mix
        [[1, "a"]],
        [[True]],
        [[[1]]],
        [HELLO, "a"],  # one token array that holds a string
    ],
)
def test_an_input_of_the_wrong_shape_is_a_400_naming_input(
    client: TestClient, value: object
) -> None:
    status, error = _post(client, value)
    assert status == 400, error
    assert error["type"] == "invalid_request_error" and error["param"] == "input", error


def test_too_many_items_is_refused_before_they_are_read(client: TestClient) -> None:
    message = _refused(client, ["ab"] * 100_000 + [None], "invalid_value")
    assert "100001 items; at most 2048" in message
    status, body = _post(client, ["hello"] * 2048)
    assert status == 200 and body["usage"]["prompt_tokens"] == 2048  # type: ignore[index]


def test_a_long_text_of_few_tokens_is_served(client: TestClient) -> None:
    status, body = _post(client, "hello" + " " * 1_000_000 + "world")
    assert status == 200 and body["usage"]["prompt_tokens"] == 2  # type: ignore[index]
