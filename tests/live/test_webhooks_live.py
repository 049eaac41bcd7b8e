"""Webhooks live: a real server and model, the SDK registers a loopback receiver, and a
background response's end arrives as an event that ``client.webhooks.unwrap`` verifies; a
receiver that is down at first gets it once it is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from tests.api.test_webhooks import Receiver
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    env = {
        "SERVERROOM_WEBHOOKS__ALLOW_PRIVATE": "true",
        "SERVERROOM_WEBHOOKS__POLL_SECONDS": "0.1",
        "SERVERROOM_WEBHOOKS__BACKOFF_SECONDS": "0.2",
    }
    server = LiveServer(tmp_path_factory.mktemp("webhooks"), env=env)
    with server.running():
        yield openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def test_a_background_response_is_announced(client: openai.OpenAI) -> None:
    receiver = Receiver()
    receiver.fail = 2  # down for the first two attempts
    try:
        endpoint = client.webhooks.create(
            name="live",
            url=receiver.url,
            event_types=["response.completed", "response.incomplete"],
        )
        response = client.responses.create(
            model="gpt-4o-mini", input="Say hi.", background=True, max_output_tokens=16
        )
        body, headers = receiver.wait(1, timeout=60)[0]
        event = client.webhooks.unwrap(body, headers, secret=endpoint.signing_secret)
        assert event.data.id == response.id
        assert event.type in ("response.completed", "response.incomplete")
        assert client.responses.retrieve(response.id).status == event.type.split(".")[1]
        assert receiver.fail == 0
        time.sleep(0.5)
        assert len(receiver.got) == 1  # delivered once it was taken
    finally:
        receiver.server.shutdown()
