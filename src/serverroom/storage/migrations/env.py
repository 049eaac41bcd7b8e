"""Alembic environment: runs migrations with a sync connection to the configured URL.

On PostgreSQL the migration holds a transaction-level advisory lock, so replicas that start
together against one database migrate it one after the other (the second finds it current)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

import serverroom.storage.tables  # noqa: F401  (registers the tables)
from serverroom.storage.db import Base

MIGRATION_LOCK = 0x5E4E4E4D  # the advisory lock's key: any constant the app uses for nothing else

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
connectable.dispose()
