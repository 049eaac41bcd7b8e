"""Alembic environment: runs migrations with a sync connection to the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import serverroom.storage.tables  # noqa: F401  (registers the tables)
from serverroom.storage.db import Base

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
        context.run_migrations()
connectable.dispose()
