"""The Alembic migrations build exactly the schema the ORM tables declare (SQLite and
PostgreSQL): a table or column added to one and not the other fails here, not in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from serverroom.storage.db import alembic_config, sync_url
from serverroom.storage.tables import Base


def _diff(url: str) -> list[object]:
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    return [change for change in diff if not _is_alembic_bookkeeping(change)]


def _is_alembic_bookkeeping(change: object) -> bool:
    return isinstance(change, tuple) and "alembic_version" in repr(change)


def test_sqlite_schema_matches_the_tables(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'schema.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches_the_tables(pg_url: str) -> None:
    assert _diff(pg_url) == []
