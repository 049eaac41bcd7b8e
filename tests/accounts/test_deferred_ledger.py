"""Deferred ledger rows: written together after ``flush_seconds``, read back by every read,
kept when a write fails, written at shutdown, and billed to the project's spend once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from serverroom.accounts.ledger import Ledger, Spend
from serverroom.accounts.repository import AccountsRepository
from serverroom.app import create_app
from serverroom.catalog import Catalog, ModelEntry
from serverroom.metering import Usage
from serverroom.storage.db import Database
from serverroom.storage.tables.accounts import UsageRow
from tests.conftest import fake_settings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


def _entry() -> ModelEntry:
    return Catalog.load().resolve("gpt-4.1")


async def _rows(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(UsageRow)) or 0)


async def _defer(ledger: Ledger, project_id: str, tokens: int) -> float:
    recorded = await ledger.record(
        project_id=project_id,
        api_key_id=None,
        entry=_entry(),
        endpoint="/v1/chat/completions",
        usage=Usage(tokens, 0, 1),
        batch=False,
        defer=True,
    )
    return recorded.cost


async def test_deferred_rows_are_written_together_and_charged_once(db: Database) -> None:
    project = await AccountsRepository(db).create_project("p")
    ledger = Ledger(db, flush_seconds=0.2)
    heard: list[tuple[str, Spend | None]] = []
    ledger.on_spend = lambda project_id, spend: heard.append((project_id, spend))
    statements: list[str] = []
    event.listen(
        db.engine.sync_engine,
        "before_cursor_execute",
        lambda *args: statements.append(str(args[2]).split()[0]),
    )
    costs = [await _defer(ledger, project.id, 100 + i) for i in range(5)]
    assert await _rows(db) == 0  # nothing written yet: the reply did not wait for it
    await asyncio.sleep(0.5)
    assert await _rows(db) == 5
    assert statements.count("INSERT") == 1 and statements.count("UPDATE") == 1
    assert len(heard) == 1 and heard[0][0] == project.id
    spend = heard[0][1]
    assert spend is not None and spend[1] == pytest.approx(sum(costs))
    assert (await AccountsRepository(db).get_project(project.id)).spend_usd == pytest.approx(
        sum(costs)
    )
    await ledger.close()


async def test_a_read_writes_the_deferred_rows_first(db: Database) -> None:
    ledger = Ledger(db, flush_seconds=30)
    await _defer(ledger, "proj_open", 10)
    totals = await ledger.summary()
    assert totals[("proj_open", "gpt-4.1")].requests == 1
    await ledger.close()


async def test_rows_a_failed_write_refused_are_written_later(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(db, flush_seconds=0.01)
    monkeypatch.setattr("serverroom.accounts.ledger.RETRY_SECONDS", 0.05)
    real = ledger._write
    failures = 0

    async def flaky(rows: list[dict[str, object]]) -> dict[str, Spend]:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise OSError("database is away")
        return await real(rows)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "_write", flaky)
    await _defer(ledger, "proj_a", 10)
    await asyncio.sleep(0.03)
    await _defer(ledger, "proj_a", 11)  # queued while the first is being retried
    for _ in range(100):
        if await _rows(db) == 2:
            break
        await asyncio.sleep(0.02)
    assert failures == 2 and await _rows(db) == 2
    await ledger.close()


async def test_close_writes_what_is_deferred(db: Database) -> None:
    ledger = Ledger(db, flush_seconds=60)
    for i in range(3):
        await _defer(ledger, "proj_b", 10 + i)
    await ledger.close()
    assert await _rows(db) == 3


def test_an_app_writes_its_deferred_usage_at_shutdown(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path)
    settings.ledger.flush_seconds = 60  # only shutdown can write it
    with TestClient(create_app(settings)) as client:
        for i in range(3):
            reply = client.post(
                "/v1/chat/completions",
                json={"model": "gpt-4.1", "messages": [{"role": "user", "content": f"hi {i}"}]},
            )
            assert reply.status_code == 200
    db = Database(settings.resolved_database_url())
    try:
        assert asyncio.run(_rows(db)) == 3
    finally:
        asyncio.run(db.close())
