"""Response and conversation storage on SQLite and PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from serverroom.api.responses.repository import RESTART_ERROR, ResponseRepository
from serverroom.app import create_app
from serverroom.errors import NotFoundError
from serverroom.settings import EngineSettings, Settings
from serverroom.storage.conversations import ConversationRepository
from serverroom.storage.db import Database
from tests.conftest import fresh_postgres_database

NOW = 1_800_000_000_000  # epoch ms


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.migrate()
    await database.migrate()  # idempotent
    try:
        yield database
    finally:
        await database.close()


def body(response_id: str, status: str = "completed", previous: str | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": "m",
        "previous_response_id": previous,
        "background": status in ("queued", "in_progress"),
        "output": [{"type": "message", "id": f"msg_out_{response_id}", "role": "assistant"}],
    }


def user(item_id: str) -> dict:  # type: ignore[type-arg]
    return {"type": "message", "id": item_id, "role": "user", "content": []}


async def test_response_repository(db: Database) -> None:
    repo = ResponseRepository(db)
    await repo.save("p1", body("resp_a"), [user("in_a")])
    await repo.save("p1", body("resp_b", previous="resp_a"), [user("in_b")])
    await repo.save("p1", body("resp_c", previous="resp_b"), [user("in_c")])
    row = await repo.get("p1", "resp_b")
    assert row.body["id"] == "resp_b" and row.input_items == [user("in_b")]
    with pytest.raises(NotFoundError):
        await repo.get("p2", "resp_b")
    chain = await repo.chain_items("p1", "resp_c")
    assert [item["id"] for item in chain] == [
        "in_a", "msg_out_resp_a", "in_b", "msg_out_resp_b", "in_c", "msg_out_resp_c",
    ]  # fmt: skip
    with pytest.raises(NotFoundError):
        await repo.chain_items("p2", "resp_c")
    with pytest.raises(NotFoundError):
        await repo.delete("p2", "resp_a")
    await repo.delete("p1", "resp_c")
    with pytest.raises(NotFoundError):
        await repo.chain_items("p1", "resp_c")


async def test_chain_is_one_query(db: Database) -> None:
    """A long previous_response_id chain is read in one round trip, oldest turn first."""
    repo = ResponseRepository(db)
    previous = None
    for n in range(12):
        await repo.save("p1", body(f"resp_{n}", previous=previous), [user(f"in_{n}")])
        previous = f"resp_{n}"
    await repo.save("p2", body("resp_x", previous="resp_11"), [user("in_x")])  # foreign link
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        chain = await repo.chain_items("p1", "resp_11")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert [item["id"] for item in chain[:4]] == [
        "in_0",
        "msg_out_resp_0",
        "in_1",
        "msg_out_resp_1",
    ]
    assert len(chain) == 24 and chain[-1]["id"] == "msg_out_resp_11"
    with pytest.raises(NotFoundError):
        await repo.chain_items("p1", "resp_x")
    assert [i["id"] for i in await repo.chain_items("p2", "resp_x")] == ["in_x", "msg_out_resp_x"]


async def test_status_updates_and_restart(db: Database) -> None:
    repo = ResponseRepository(db)
    await repo.save("p1", body("resp_q", "queued"), [])
    await repo.save("p1", body("resp_r", "in_progress"), [])
    await repo.save("p1", body("resp_done"), [])
    assert not await repo.update_status(
        "p1", "resp_done", body("resp_done", "cancelled"), only_if=("queued",)
    )
    assert await repo.update_status(
        "p1", "resp_q", body("resp_q", "in_progress"), only_if=("queued",)
    )
    assert await repo.fail_interrupted(NOW) == 2  # no lease: nobody runs them
    for response_id in ("resp_q", "resp_r"):
        row = await repo.get("p1", response_id)
        assert row.status == "failed" and row.body["status"] == "failed"
        assert row.body["error"] == RESTART_ERROR
    assert (await repo.get("p1", "resp_done")).status == "completed"
    assert await repo.fail_interrupted(NOW) == 0


async def test_leases_keep_a_live_replicas_responses(db: Database) -> None:
    repo = ResponseRepository(db)
    await repo.save("p1", body("resp_a", "in_progress"), [], lease=("replica_a", NOW + 1000))
    await repo.save("p1", body("resp_b", "queued"), [], lease=("replica_b", NOW + 1000))
    await repo.save("p1", body("resp_dead", "in_progress"), [], lease=("replica_c", NOW - 1))
    assert await repo.fail_interrupted(NOW) == 1  # only the dead replica's
    assert (await repo.get("p1", "resp_dead")).status == "failed"
    assert await repo.renew("replica_a", NOW + 5000) == 1
    assert await repo.fail_interrupted(NOW + 2000) == 1  # b did not renew: its lease ran out
    assert (await repo.get("p1", "resp_a")).status == "in_progress"
    assert (await repo.get("p1", "resp_b")).status == "failed"
    assert await repo.fail_interrupted(NOW, owner="replica_a") == 1  # a shuts down
    assert (await repo.get("p1", "resp_a")).status == "failed"
    assert await repo.renew("replica_a", NOW + 9000) == 0


async def test_conversation_repository(db: Database) -> None:
    repo = ConversationRepository(db)
    conv = await repo.create("p1", {"a": "b"}, [user("i0"), user("i1")])
    await repo.add_items("p1", conv.id, [user(f"i{n}") for n in range(2, 5)])
    assert [i["id"] for i in await repo.all_items("p1", conv.id)] == [f"i{n}" for n in range(5)]
    page, more = await repo.list_items("p1", conv.id, after=None, limit=2, order="desc")
    assert [i["id"] for i in page] == ["i4", "i3"] and more
    page, more = await repo.list_items("p1", conv.id, after="i3", limit=5, order="desc")
    assert [i["id"] for i in page] == ["i2", "i1", "i0"] and not more
    page, more = await repo.list_items("p1", conv.id, after="i1", limit=5, order="asc")
    assert [i["id"] for i in page] == ["i2", "i3", "i4"] and not more
    with pytest.raises(NotFoundError):
        await repo.get("p2", conv.id)
    with pytest.raises(NotFoundError):
        await repo.add_items("p2", conv.id, [user("x")])
    updated = await repo.update_metadata("p1", conv.id, {"c": "d"})
    assert updated.metadata_ == {"c": "d"}
    await repo.delete_item("p1", conv.id, "i2")
    assert len(await repo.all_items("p1", conv.id)) == 4
    await repo.delete("p1", conv.id)
    with pytest.raises(NotFoundError):
        await repo.get("p1", conv.id)


def app_settings(tmp_path: Path, url: str, delay: float = 0.0) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        engine=EngineSettings(kind="fake", fake_delay=delay),
    )


def test_end_to_end_and_restart(db_url: str, tmp_path: Path) -> None:
    """The SDK over an app on this database; state survives a second app on the same data."""
    settings = app_settings(tmp_path, db_url, delay=0.02)
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(api_key="k", base_url="http://t/v1", http_client=client, max_retries=0)
        first = sdk.responses.create(model="gpt-4.1", input="one")
        conv = sdk.conversations.create(items=[{"role": "user", "content": "hello"}])
        sdk.responses.create(model="gpt-4.1", input="hi", conversation=conv.id, max_output_tokens=4)
        background = sdk.responses.create(model="gpt-4.1", input="slow", background=True)
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(api_key="k", base_url="http://t/v1", http_client=client, max_retries=0)
        second = sdk.responses.create(model="gpt-4.1", input="two", previous_response_id=first.id)
        assert second.usage is not None and first.usage is not None
        assert second.usage.input_tokens > first.usage.input_tokens
        assert len(list(sdk.conversations.items.list(conv.id))) == 3
        assert sdk.responses.retrieve(background.id).status == "failed"
