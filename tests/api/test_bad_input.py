"""Bad input is the platform's 400 on both databases, and the server stays healthy after each:
lone surrogates and NUL characters anywhere in a body or URL, schemas nested absurdly deep,
malformed logit_bias keys, over-long ids and names.

Each case runs in-process (fake engine) and against a real ``serverroom serve`` with the
bundled model (marker ``live``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from tests.conftest import fake_settings, fresh_postgres_database
from tests.live.server import LiveServer

MSG = [{"role": "user", "content": "hi"}]
Client = httpx.Client | TestClient  # the same calls, in-process or over the network


class LiveServers:
    """Real servers (bundled model), started on first use: one per database."""

    def __init__(self, tmp: pytest.TempPathFactory, stack: ExitStack) -> None:
        self.tmp, self.stack, self.servers = tmp, stack, dict[str, LiveServer]()

    def get(self, database: str) -> LiveServer:
        if database not in self.servers:
            env = {}
            if database == "postgres":
                env["SERVERROOM_DATABASE_URL"] = self.stack.enter_context(fresh_postgres_database())
            data = self.tmp.mktemp(f"bad-{database}")
            server = LiveServer(data, env=env, args=["--engine.slot_context", "2048"])
            server.start()
            self.stack.callback(server.stop)
            self.servers[database] = server
        return self.servers[database]


@pytest.fixture(scope="module")
def live_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServers]:
    with ExitStack() as stack:
        yield LiveServers(tmp_path_factory, stack)


LIVE = [pytest.mark.live]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("live-sqlite", marks=LIVE),
        pytest.param("live-postgres", marks=[*LIVE, pytest.mark.postgres]),
    ]
)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    if request.param.startswith("live-"):
        servers: LiveServers = request.getfixturevalue("live_servers")
        server = servers.get(request.param.removeprefix("live-"))
        headers = {"authorization": f"Bearer {server.api_key}"}
        with httpx.Client(base_url=server.root_url, headers=headers, timeout=60) as live:
            yield live
        return
    if request.param == "sqlite":
        with TestClient(create_app(fake_settings(tmp_path))) as test_client:
            yield test_client
        return
    with fresh_postgres_database() as url:
        settings = fake_settings(tmp_path, database_url=url)
        with TestClient(create_app(settings)) as test_client:
            yield test_client


def _raw(client: Client, path: str, text: str) -> int:
    """POST a JSON body written by hand (escapes such as \\ud800 kept as they are)."""
    reply = client.post(path, content=text.encode(), headers={"content-type": "application/json"})
    if reply.status_code == 400:
        assert reply.json()["error"]["type"] == "invalid_request_error"
    return reply.status_code


def _healthy(client: Client) -> None:
    assert client.get("/health").status_code == 200
    chat = {"model": "gpt-4.1", "messages": MSG, "max_tokens": 4}
    reply = client.post("/v1/chat/completions", json=chat)
    assert reply.status_code == 200, reply.text


BODIES = [
    (
        "/v1/chat/completions",
        '{"model":"gpt-4.1","messages":[{"role":"user","content":"a\\ud800"}]}',
    ),
    (
        "/v1/chat/completions",
        '{"model":"gpt-4.1","messages":[{"role":"user","content":"a\\u0000b"}]}',
    ),
    ("/v1/responses", '{"model":"gpt-4.1","input":"\\udfff"}'),
    ("/v1/responses", '{"model":"gpt-4.1","input":"hi","metadata":{"k":"\\ud800"}}'),
    ("/v1/responses", '{"model":"gpt-4.1","input":"hi","previous_response_id":"resp_\\u0000"}'),
    ("/v1/responses/input_tokens", '{"model":"gpt-4.1","input":"\\ud800"}'),
    ("/v1/embeddings", '{"model":"text-embedding-3-small","input":"\\ud800"}'),
    ("/v1/conversations", '{"metadata":{"a":"\\u0000"}}'),
]


@pytest.mark.parametrize(("path", "text"), BODIES)
def test_unstorable_text_in_a_body_is_a_400(client: Client, path: str, text: str) -> None:
    assert _raw(client, path, text) == 400
    _healthy(client)


def test_invalid_utf8_is_a_400(client: Client) -> None:
    body = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"\xff"}]}'
    reply = client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    _healthy(client)


def test_a_schema_nested_300_deep_is_a_400(client: Client) -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(300):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}}
    body = {"model": "gpt-4.1", "messages": MSG, "response_format": fmt}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400 and "nested" in reply.json()["error"]["message"]
    _healthy(client)


@pytest.mark.parametrize("key", ["--5", "²", "٣", "1e3", ""])
def test_malformed_logit_bias_keys_are_a_400(client: Client, key: str) -> None:
    body = {"model": "gpt-4.1", "messages": MSG, "logit_bias": {key: 1}}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "logit_bias"
    _healthy(client)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/responses/resp_%00abc",
        "/v1/responses/resp_%00abc/input_items",
        "/v1/conversations/conv_%00abc",
        "/v1/conversations/conv_%00abc/items",
        "/v1/files/file-%00abc",
        "/v1/batches/batch_%00abc",
        "/v1/files?after=file-%00abc",
        "/v1/batches?after=batch_%00",
    ],
)
def test_nul_in_an_id_is_a_4xx(client: Client, path: str) -> None:
    reply = client.get(path)
    if "?after=" in path:  # an unknown cursor: an empty page, or a 4xx
        assert reply.status_code in (200, 400, 404), reply.text
    else:
        assert reply.status_code in (400, 404), reply.text
    if reply.status_code != 200:
        assert reply.json()["error"]["type"] == "invalid_request_error"
    _healthy(client)


def test_an_over_long_item_id_is_a_400_or_stored(client: Client) -> None:
    conversation = client.post("/v1/conversations", json={}).json()["id"]
    item = {"type": "message", "role": "user", "content": "hi", "id": "msg_" + "x" * 100}
    reply = client.post(f"/v1/conversations/{conversation}/items", json={"items": [item]})
    assert reply.status_code in (200, 400), reply.text
    if reply.status_code == 200:
        listed = client.get(f"/v1/conversations/{conversation}/items").json()["data"]
        assert listed[0]["id"] == item["id"]
    _healthy(client)


def test_an_over_long_filename_is_a_400_or_stored(client: Client) -> None:
    name = "f" * 1000 + ".jsonl"
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"})
    reply = client.post(
        "/v1/files", files={"file": (name, line.encode())}, data={"purpose": "batch"}
    )
    assert reply.status_code in (200, 400), reply.text
    if reply.status_code == 200:
        assert client.get(f"/v1/files/{reply.json()['id']}").json()["filename"] == name
    _healthy(client)
