"""Vector stores, their attached files and file batches, and the files' chunks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008_vector_stores"
down_revision = "0007_file_chunks"

ID = sa.String(64)


def _needed(name: str, kind: Any) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=False)


def _optional(name: str, kind: Any) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=True)


def _listed() -> list[sa.Column[Any]]:
    """seq (the list cursor), the public id, the owning project."""
    return [
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", ID, nullable=False, unique=True),
        _needed("project_id", ID),
    ]


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        *_listed(),
        _needed("name", sa.String(512)),
        _optional("description", sa.Text()),
        _needed("created_at", sa.BigInteger()),
        _needed("last_active_at", sa.BigInteger()),
        _needed("metadata", sa.JSON()),
        _optional("expires_after", sa.JSON()),
    )
    op.create_index("ix_vector_stores_project", "vector_stores", ["project_id"])
    op.create_table(
        "vector_store_files",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        *(_needed(name, ID) for name in ("vector_store_id", "file_id", "project_id")),
        _optional("batch_id", ID),
        _needed("created_at", sa.BigInteger()),
        _needed("status", sa.String(16)),
        *(_optional(name, sa.JSON()) for name in ("last_error", "attributes")),
        _needed("chunking", sa.JSON()),
        _needed("usage_bytes", sa.BigInteger()),
        _optional("claimed_by", ID),
        _optional("claim_until", sa.BigInteger()),
    )
    op.create_index(
        "ux_vector_store_files", "vector_store_files", ["vector_store_id", "file_id"], unique=True
    )
    op.create_index("ix_vector_store_files_status", "vector_store_files", ["status"])
    op.create_table(
        "vector_store_file_batches",
        *_listed(),
        _needed("vector_store_id", ID),
        _needed("created_at", sa.BigInteger()),
        _needed("cancelled", sa.Boolean()),
    )
    op.create_table(
        "vector_store_chunks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        *(_needed(name, ID) for name in ("vector_store_id", "file_id")),
        *(_needed(name, sa.Integer()) for name in ("position", "tokens")),
        _needed("text", sa.Text()),
        _needed("embedding", sa.LargeBinary()),
    )
    op.create_index(
        "ix_vector_store_chunks_file", "vector_store_chunks", ["vector_store_id", "file_id"]
    )


def downgrade() -> None:
    for table in (
        "vector_store_chunks",
        "vector_store_file_batches",
        "vector_store_files",
        "vector_stores",
    ):
        op.drop_table(table)
