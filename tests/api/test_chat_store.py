"""Stored Chat Completions on the fake engine: store, list and filters, retrieve, update,
messages, delete and project isolation, through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.context import get_principal
from serverroom.principal import Principal
from tests.conftest import fake_settings

MSG: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "x"}]},
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        settings = fake_settings(tmp_path, database_url=url)
    else:
        settings = fake_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def store_sdk(store_client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", base_url="http://testserver/v1", http_client=store_client, max_retries=0
    )


def _create(sdk: openai.OpenAI, **extra: Any) -> Any:
    return sdk.chat.completions.create(model="gpt-4.1", messages=MSG, store=True, **extra)


def test_store_retrieve_and_messages(store_sdk: openai.OpenAI) -> None:
    made = _create(store_sdk, metadata={"topic": "greeting"})
    got = store_sdk.chat.completions.retrieve(made.id)
    assert got.id == made.id
    assert got.choices[0].message.content == made.choices[0].message.content
    assert got.usage == made.usage
    assert got.metadata == {"topic": "greeting"}
    messages = list(store_sdk.chat.completions.messages.list(made.id))
    assert [m.id for m in messages] == [f"{made.id}-0", f"{made.id}-1"]
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == "Be brief." and messages[0].content_parts is None
    assert messages[1].content == "hi x"
    assert [p.type for p in messages[1].content_parts or []] == ["text", "text"]
    page = store_sdk.chat.completions.messages.list(made.id, limit=1, order="desc")
    assert [m.id for m in page.data] == [f"{made.id}-1"] and page.has_more


def test_not_stored_without_store(store_sdk: openai.OpenAI) -> None:
    made = store_sdk.chat.completions.create(model="gpt-4.1", messages=MSG)
    with pytest.raises(openai.NotFoundError):
        store_sdk.chat.completions.retrieve(made.id)
    assert list(store_sdk.chat.completions.list()) == []


def test_a_stream_is_stored_as_its_completion(store_sdk: openai.OpenAI) -> None:
    stream = store_sdk.chat.completions.create(
        model="gpt-4.1", messages=MSG, store=True, stream=True, n=2
    )
    chunks = list(stream)
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    got = store_sdk.chat.completions.retrieve(chunks[0].id)
    assert [c.message.content for c in got.choices] == texts
    assert [c.finish_reason for c in got.choices] == ["stop", "stop"]


def test_list_order_paging_and_filters(store_sdk: openai.OpenAI) -> None:
    ids = [_create(store_sdk, metadata={"n": str(i % 2)}).id for i in range(5)]
    assert [c.id for c in store_sdk.chat.completions.list()] == ids  # oldest first
    assert [c.id for c in store_sdk.chat.completions.list(order="desc")] == ids[::-1]
    first = store_sdk.chat.completions.list(limit=2)
    assert [c.id for c in first.data] == ids[:2] and first.has_more
    assert [c.id for c in store_sdk.chat.completions.list(limit=2)] == ids  # auto-paging
    after = store_sdk.chat.completions.list(after=ids[3])
    assert [c.id for c in after.data] == ids[4:] and not after.has_more
    odd = store_sdk.chat.completions.list(metadata={"n": "1"})
    assert [c.id for c in odd] == [ids[1], ids[3]]
    assert list(store_sdk.chat.completions.list(metadata={"n": "1", "x": "y"})) == []
    assert len(list(store_sdk.chat.completions.list(model="gpt-4.1"))) == 5
    assert list(store_sdk.chat.completions.list(model="gpt-4o")) == []


def test_update_metadata_replaces_it_and_the_filter_follows(store_sdk: openai.OpenAI) -> None:
    made = _create(store_sdk, metadata={"a": "1", "b": "2"})
    updated = store_sdk.chat.completions.update(made.id, metadata={"c": "3"})
    assert updated.metadata == {"c": "3"}
    assert list(store_sdk.chat.completions.list(metadata={"a": "1"})) == []
    assert [c.id for c in store_sdk.chat.completions.list(metadata={"c": "3"})] == [made.id]
    cleared = store_sdk.chat.completions.update(made.id, metadata=None)
    assert cleared.metadata == {}


def test_delete(store_sdk: openai.OpenAI) -> None:
    made = _create(store_sdk, metadata={"k": "v"})
    deleted = store_sdk.chat.completions.delete(made.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        made.id,
        "chat.completion.deleted",
        True,
    )
    for call in (
        lambda: store_sdk.chat.completions.retrieve(made.id),
        lambda: store_sdk.chat.completions.delete(made.id),
        lambda: store_sdk.chat.completions.messages.list(made.id),
        lambda: store_sdk.chat.completions.update(made.id, metadata={}),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body["param"] == "completion_id"  # type: ignore[index]
    assert list(store_sdk.chat.completions.list(metadata={"k": "v"})) == []


def test_another_project_sees_nothing(store_client: TestClient, store_sdk: openai.OpenAI) -> None:
    made = _create(store_sdk)
    app = store_client.app
    app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        for method, path in [
            ("GET", f"/v1/chat/completions/{made.id}"),
            ("GET", f"/v1/chat/completions/{made.id}/messages"),
            ("DELETE", f"/v1/chat/completions/{made.id}"),
        ]:
            reply = store_client.request(method, path)
            assert reply.status_code == 404, (method, path)
            assert reply.json()["error"]["type"] == "invalid_request_error"
        update = {"metadata": {"x": "y"}}
        assert store_client.post(f"/v1/chat/completions/{made.id}", json=update).status_code == 404
        assert store_client.get("/v1/chat/completions").json()["data"] == []
        after = store_client.get("/v1/chat/completions", params={"after": made.id}).json()
        assert after["data"] == []
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert store_sdk.chat.completions.retrieve(made.id).id == made.id


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 513}},
        {"metadata": {str(i): "v" for i in range(17)}},
        {"metadata": "x"},
    ],
)
def test_bad_updates_are_400(store_sdk: openai.OpenAI, store_client: TestClient, body: Any) -> None:
    made = _create(store_sdk)
    reply = store_client.post(f"/v1/chat/completions/{made.id}", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"].startswith("metadata")
    assert store_sdk.chat.completions.retrieve(made.id).metadata == {}


def test_bad_list_queries_are_400(store_client: TestClient) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        reply = store_client.get("/v1/chat/completions", params=params)
        assert reply.status_code == 400, params


def test_a_batch_line_with_store_is_stored(store_sdk: openai.OpenAI) -> None:
    from tests.api.test_batches import chat_line, read_jsonl, submit, wait

    lines = [chat_line("kept", store=True, metadata={"via": "batch"}), chat_line("not kept")]
    batch = wait(store_sdk, submit(store_sdk, lines).id)
    output = {
        x["custom_id"]: x["response"]["body"] for x in read_jsonl(store_sdk, batch.output_file_id)
    }
    stored = list(store_sdk.chat.completions.list())
    assert [c.id for c in stored] == [output["kept"]["id"]]
    assert stored[0].metadata == {"via": "batch"}
