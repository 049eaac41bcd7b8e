"""Webhooks through the official SDK (``client.webhooks``) with a real receiver on loopback:
endpoints are created, listed, updated, rotated and deleted; a background response and a
batch send signed events that ``client.webhooks.unwrap`` verifies; a receiver that fails gets
the delivery again with backoff until it takes it; a rotation's grace period signs with both
secrets; URLs on private addresses need the operator's leave."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import BatchSettings, WebhookSettings
from tests.conftest import fake_settings

MODEL = "gpt-4.1-mini"


class Receiver:
    """An HTTP server on loopback that records what it is sent; ``fail`` answers 500 first."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []
        self.fail = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if owner.fail > 0:
                    owner.fail -= 1
                    self.send_response(500)
                else:
                    owner.got.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int, timeout: float = 20.0) -> list[tuple[bytes, dict[str, str]]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"got {len(self.got)} of {count} deliveries"
            time.sleep(0.05)
        return self.got


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture
def sdk(tmp_path: Path) -> Iterator[openai.OpenAI]:
    settings = fake_settings(
        tmp_path,
        webhooks=WebhookSettings(allow_private=True, poll_seconds=0.05, backoff_seconds=0.05),
        batch=BatchSettings(poll_seconds=0.1),
    )
    with TestClient(create_app(settings)) as client:
        yield openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )


def _wait_status(sdk: openai.OpenAI, response_id: str) -> str:
    deadline = time.monotonic() + 20
    while (status := sdk.responses.retrieve(response_id).status) in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return str(status)


def test_endpoints_are_managed_through_the_sdk(sdk: openai.OpenAI, receiver: Receiver) -> None:
    made = sdk.webhooks.create(name="ci", url=receiver.url, event_types=["batch.completed"])
    assert made.signing_secret.startswith("whsec_") and made.object == "webhook_endpoint"
    assert made.signing_secret_hint == f"whsec_…{made.signing_secret[-4:]}"
    assert sdk.webhooks.retrieve(made.id).url == receiver.url
    assert [e.id for e in sdk.webhooks.list().data] == [made.id]
    changed = sdk.webhooks.update(made.id, name="renamed", event_types=["response.completed"])
    assert changed.name == "renamed" and changed.event_types == ["response.completed"]
    rotated = sdk.webhooks.rotate_secret(made.id)
    assert rotated.signing_secret != made.signing_secret
    tested = sdk.webhooks.test(made.id, event_type="response.completed")
    assert tested.status_code == 200 and tested.success
    body, headers = receiver.wait(1)[0]
    event = sdk.webhooks.unwrap(body, headers, secret=rotated.signing_secret)
    assert event.type == "response.completed"
    assert sdk.webhooks.delete(made.id).deleted
    with pytest.raises(openai.NotFoundError):
        sdk.webhooks.retrieve(made.id)


def test_a_background_response_sends_a_signed_event(sdk: openai.OpenAI, receiver: Receiver) -> None:
    made = sdk.webhooks.create(
        name="responses", url=receiver.url, event_types=["response.completed", "response.failed"]
    )
    response = sdk.responses.create(model=MODEL, input="hi", background=True, max_output_tokens=200)
    assert _wait_status(sdk, response.id) == "completed"
    body, headers = receiver.wait(1)[0]
    event = sdk.webhooks.unwrap(body, headers, secret=made.signing_secret)
    assert event.type == "response.completed" and event.data.id == response.id
    assert headers["webhook-id"] == event.id and event.id.startswith("evt_")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.unwrap(body, headers, secret="whsec_" + "A" * 44)
    sdk.responses.create(model=MODEL, input="not background", max_output_tokens=4)
    time.sleep(0.3)
    assert len(receiver.got) == 1  # only background responses are announced


def test_a_failing_receiver_gets_the_event_again(sdk: openai.OpenAI, receiver: Receiver) -> None:
    made = sdk.webhooks.create(name="b", url=receiver.url, event_types=["batch.completed"])
    receiver.fail = 3
    line = {
        "custom_id": "r0",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    }
    upload = sdk.files.create(
        file=("in.jsonl", (json.dumps(line) + "\n").encode()), purpose="batch"
    )
    batch = sdk.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    body, headers = receiver.wait(1)[0]
    event = sdk.webhooks.unwrap(body, headers, secret=made.signing_secret)
    assert event.type == "batch.completed" and event.data.id == batch.id
    assert receiver.fail == 0  # three failed attempts came first, each retried


def test_a_rotation_grace_period_signs_with_both_secrets(
    sdk: openai.OpenAI, receiver: Receiver
) -> None:
    made = sdk.webhooks.create(name="g", url=receiver.url, event_types=["response.completed"])
    rotated = sdk.webhooks.rotate_secret(made.id, keep_old_secret_active_for_24_hours=True)
    sdk.webhooks.test(made.id, event_type="response.completed")
    body, headers = receiver.wait(1)[0]
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (made.signing_secret, rotated.signing_secret):
        sdk.webhooks.unwrap(body, headers, secret=secret)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"event_types": ["fine_tuning.job.succeeded"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"url": "ftp://example.com/x"}, "url"),
    ],
)
def test_bad_endpoints_are_a_400(
    sdk: openai.OpenAI, receiver: Receiver, fields: dict[str, Any], param: str
) -> None:
    body = {"name": "x", "url": receiver.url, "event_types": ["batch.completed"], **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.post("/webhook_endpoints", body=body, cast_to=object)
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_private_addresses_need_the_operators_leave(tmp_path: Path, receiver: Receiver) -> None:
    with TestClient(create_app(fake_settings(tmp_path))) as client:
        sdk = openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.webhooks.create(name="x", url=receiver.url, event_types=["batch.completed"])
        assert "public addresses" in caught.value.message
