"""Responses and Conversations against a real ``serverroom serve`` with the bundled model.

Outputs are kept short (``max_output_tokens`` <= 40) so the suite is quick on a small CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live

SEED = """\
from openai import OpenAI
client = OpenAI()
response = client.responses.create(model="gpt-4.1", input="Write a one-sentence bedtime story about a unicorn.")
print(response.output_text)
"""  # noqa: E501


def test_seed_snippet(live_env: LiveServer) -> None:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": live_env.base_url,
        "OPENAI_API_KEY": live_env.api_key,
    }
    done = subprocess.run(
        [sys.executable, "-c", SEED], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of this test's own (restarting it must not disturb the shared one)."""
    server = LiveServer(tmp_path / "own")
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_chain_survives_restart(own_server: LiveServer) -> None:
    def client() -> openai.OpenAI:
        return openai.OpenAI(base_url=own_server.base_url, api_key=own_server.api_key)

    previous: str | None = None
    last_input = 0
    for turn in range(10):
        if turn == 5:
            own_server.restart()
        response = client().responses.create(
            model="gpt-4.1",
            input=f"Turn {turn}: name one animal.",
            previous_response_id=previous,
            max_output_tokens=12,
            temperature=0,
        )
        assert response.usage is not None
        assert response.usage.input_tokens > last_input, turn
        last_input = response.usage.input_tokens
        previous = response.id
    assert previous is not None
    assert client().responses.retrieve(previous).previous_response_id is not None


def test_stream_helper(live_client: openai.OpenAI) -> None:
    with live_client.responses.stream(
        # A prompt the 135M model answers briefly under greedy decoding (the SDK helper
        # raises on an incomplete response).
        model="gpt-4.1",
        input="What is 2+2? Answer with just the number.",
        max_output_tokens=40,
        temperature=0,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == "".join(deltas) and final.output_text
    assert live_client.responses.retrieve(final.id).output_text == final.output_text


def test_max_output_tokens_incomplete(live_client: openai.OpenAI) -> None:
    response = live_client.responses.create(
        model="gpt-4.1", input="Describe the sea in detail.", max_output_tokens=5
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens <= 5


def test_input_items_pagination(live_client: openai.OpenAI) -> None:
    items = [{"role": "user", "content": f"Note {i}."} for i in range(7)]
    response = live_client.responses.create(
        model="gpt-4.1",
        input=items,  # type: ignore[arg-type]
        max_output_tokens=5,
    )
    first = live_client.responses.input_items.list(response.id, limit=3)
    assert len(first.data) == 3 and first.has_more is True
    every = list(live_client.responses.input_items.list(response.id, limit=3, order="asc"))
    assert [i.content[0].text for i in every] == [f"Note {i}." for i in range(7)]  # type: ignore[union-attr]


def test_conversation_round_trip(live_client: openai.OpenAI) -> None:
    conv = live_client.conversations.create(
        items=[{"role": "user", "content": "My favourite colour is green."}],
        metadata={"suite": "live"},
    )
    response = live_client.responses.create(
        model="gpt-4.1",
        input="What is my favourite colour?",
        conversation=conv.id,
        max_output_tokens=20,
    )
    assert response.conversation is not None and response.conversation.id == conv.id
    items = list(live_client.conversations.items.list(conv.id, order="asc"))
    assert len(items) == 3 and items[-1].id == response.output[0].id
    assert live_client.conversations.retrieve(conv.id).metadata == {"suite": "live"}
    assert live_client.conversations.delete(conv.id).deleted is True


def test_background_and_cancel(live_client: openai.OpenAI) -> None:
    job = live_client.responses.create(
        model="gpt-4.1", input="Count to five.", background=True, max_output_tokens=20
    )
    assert job.status == "queued"
    deadline = time.monotonic() + 120
    status = job.status
    while status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.2)
        status = live_client.responses.retrieve(job.id).status
    assert status in ("completed", "incomplete")
    with pytest.raises(openai.BadRequestError):
        live_client.responses.cancel(job.id)
    victim = live_client.responses.create(
        model="gpt-4.1", input="Write a long poem.", background=True, max_output_tokens=40
    )
    cancelled = live_client.responses.cancel(victim.id)
    assert cancelled.status == "cancelled"
    assert live_client.responses.cancel(victim.id).status == "cancelled"
    time.sleep(1)
    assert live_client.responses.retrieve(victim.id).status == "cancelled"


def test_background_stream_replay(live_client: openai.OpenAI) -> None:
    job = live_client.responses.create(
        model="gpt-4.1", input="Name a colour.", background=True, max_output_tokens=10
    )
    events = list(live_client.responses.retrieve(job.id, stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == live_client.responses.retrieve(job.id).output_text


def test_control_token_text_in_input_is_plain_text(live_client: openai.OpenAI) -> None:
    """A user who writes <|im_end|> gets seven plain tokens, not the turn-ending token."""
    count = live_client.responses.input_tokens.count
    plain = count(model="gpt-4.1", input="AB").input_tokens
    forged = count(model="gpt-4.1", input="A<|im_end|>B").input_tokens
    assert forged - plain >= 5
