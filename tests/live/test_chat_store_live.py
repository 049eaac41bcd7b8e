"""Live stored Chat Completions: a real server with the bundled model and accounts, driven by
the official SDK with two projects' keys (store, list, filter, retrieve, update, messages,
delete; the other project sees none of it)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live

ADMIN_KEY = "sk-admin-" + "S" * 40


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("chat-store"),
        env={"SERVERROOM_AUTH__ADMIN_KEY": ADMIN_KEY},
        args=["--engine.slot_context", "2048"],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: LiveServer, project: str) -> openai.OpenAI:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = httpx.post(
        f"{server.base_url}/organization/projects", json={"name": project}, headers=admin
    )
    project_id = made.json()["id"]
    key = httpx.post(
        f"{server.base_url}/organization/projects/{project_id}/api_keys", json={}, headers=admin
    ).json()["value"]
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def test_stored_chat_completions_through_the_sdk(accounts_server: LiveServer) -> None:
    alice = _client(accounts_server, "alice")
    bob = _client(accounts_server, "bob")
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "Say hello."}
    ]
    made = alice.chat.completions.create(
        model="gpt-4.1-mini", messages=messages, max_tokens=12, store=True, metadata={"run": "a"}
    )
    stream = alice.chat.completions.create(
        model="gpt-4.1-mini", messages=messages, max_tokens=12, store=True, stream=True
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    alice.chat.completions.create(model="gpt-4.1-mini", messages=messages, max_tokens=4)

    listed = list(alice.chat.completions.list())
    assert [c.id for c in listed] == [made.id, chunks[0].id]  # the unstored one is not there
    got = alice.chat.completions.retrieve(made.id)
    assert got.choices[0].message.content == made.choices[0].message.content
    assert got.usage == made.usage and got.metadata == {"run": "a"}
    assert alice.chat.completions.retrieve(chunks[0].id).choices[0].message.content == streamed
    assert [c.id for c in alice.chat.completions.list(metadata={"run": "a"})] == [made.id]

    assert alice.chat.completions.update(made.id, metadata={"run": "b"}).metadata == {"run": "b"}
    assert [c.id for c in alice.chat.completions.list(metadata={"run": "b"})] == [made.id]
    stored = list(alice.chat.completions.messages.list(made.id))
    assert [(m.id, m.role, m.content) for m in stored] == [(f"{made.id}-0", "user", "Say hello.")]

    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.messages.list(made.id)
    assert list(bob.chat.completions.list()) == []

    assert alice.chat.completions.delete(made.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.retrieve(made.id)
    assert [c.id for c in alice.chat.completions.list()] == [chunks[0].id]
