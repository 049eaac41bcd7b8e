"""Requests whose clients give up stop generating: a non-streaming request abandoned by its
client (a timeout, a closed connection) frees its engine slot at once, so the next request does
not queue behind generations nobody will read."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live
NO_END = {"0": -100, "2": -100}  # <|endoftext|> and <|im_end|> banned: runs to max_tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("abandon"),
        args=["--engine.slots", "2", "--engine.slot_context", "2048"],
    )
    live.start()
    yield live
    live.stop()


def _abandoned(server: LiveServer, kind: int) -> None:
    """One long non-streaming request whose client gives up after a second."""
    if kind % 3 == 0:
        path, body = "/chat/completions", {"messages": [{"role": "user", "content": "Go on."}]}
        body |= {"max_tokens": 1500, "logit_bias": NO_END}
    elif kind % 3 == 1:
        path, body = "/completions", {"prompt": "Once upon a time", "max_tokens": 1500}
        body |= {"logit_bias": NO_END}
    else:
        path, body = "/responses", {"input": "Write a very long story.", "max_output_tokens": 1500}
    headers = {"authorization": f"Bearer {server.api_key}"}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            server.base_url + path, json={"model": "gpt-4.1", **body}, headers=headers, timeout=1.0
        )


def test_abandoned_requests_free_the_engine(server: LiveServer) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kind: _abandoned(server, kind), range(8)))
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    started = time.monotonic()
    reply = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
    )
    took = time.monotonic() - started
    assert reply.choices[0].message.content
    # Eight 1,500-token generations on two slots take over a minute at any speed this machine
    # reaches (under 100 tokens/s a slot); freed, the fresh request takes a second or two.
    assert took < 30, f"the fresh request waited {took:.1f} s behind abandoned work"


def _fresh_reply_seconds(server: LiveServer) -> float:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
    started = time.monotonic()
    reply = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
    )
    assert reply.choices[0].message.content
    return time.monotonic() - started


def test_cancelled_background_responses_free_the_engine(server: LiveServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
    ids = [
        client.responses.create(
            model="gpt-4.1",
            input=f"Write a very long story about a ship ({i}).",
            background=True,
            max_output_tokens=1500,
        ).id
        for i in range(4)
    ]
    time.sleep(1)
    cancelled = []
    for response_id in ids:
        try:
            assert client.responses.cancel(response_id).status == "cancelled"
            cancelled.append(response_id)
        except openai.BadRequestError as exc:  # the sampled story ended (EOS) before the cancel
            assert "status 'completed'" in exc.message, exc.message
    assert len(cancelled) >= 2, "most of the long stories should still be running after 1 s"
    took = _fresh_reply_seconds(server)
    assert took < 30, f"the fresh request waited {took:.1f} s behind cancelled responses"
    assert {client.responses.retrieve(i).status for i in cancelled} == {"cancelled"}


def test_a_cancelled_batch_frees_the_engine(server: LiveServer) -> None:
    import json

    client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
    lines = [
        json.dumps(
            {
                "custom_id": f"long{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4.1",
                    "max_tokens": 1500,
                    "logit_bias": NO_END,
                    "messages": [{"role": "user", "content": f"Go on ({i})."}],
                },
            }
        )
        for i in range(6)
    ]
    upload = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while client.batches.retrieve(batch.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.5)  # its first lines are generating
    client.batches.cancel(batch.id)
    took = _fresh_reply_seconds(server)
    assert took < 30, f"the fresh request waited {took:.1f} s behind a cancelled batch"
    deadline = time.monotonic() + 60
    while client.batches.retrieve(batch.id).status != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.2)
