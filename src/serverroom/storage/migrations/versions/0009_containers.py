"""Containers (the code interpreter's) and the files in them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_containers"
down_revision = "0008_vector_stores"

ID = sa.String(64)


def _columns(**kinds: Any) -> list[sa.Column[Any]]:
    """seq (the list cursor), the public id and the owning project, then ``kinds`` (all
    required)."""
    return [
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", ID, nullable=False, unique=True),
        *(
            sa.Column(name, kind, nullable=False)
            for name, kind in {"project_id": ID, **kinds}.items()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "containers",
        *_columns(
            name=sa.String(512),
            created_at=sa.BigInteger(),
            last_active_at=sa.BigInteger(),
            expires_minutes=sa.Integer(),
            memory_limit=sa.String(8),
        ),
    )
    op.create_index("ix_containers_project", "containers", ["project_id"])
    op.create_table(
        "container_files",
        *_columns(
            container_id=ID,
            path=sa.String(1024),
            bytes=sa.BigInteger(),
            source=sa.String(16),
            created_at=sa.BigInteger(),
            blob_id=ID,
        ),
    )
    op.create_index(
        "ux_container_files_path", "container_files", ["container_id", "path"], unique=True
    )


def downgrade() -> None:
    for table in ("container_files", "containers"):
        op.drop_table(table)
