"""Stored Chat Completions and their metadata pairs."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_chat_completions"
down_revision = "0001_base"
branch_labels = ("chat_completions",)


def upgrade() -> None:
    op.create_table(
        "chat_completions",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
    )
    op.create_index("ix_chat_completions_project_seq", "chat_completions", ["project_id", "seq"])
    op.create_table(
        "chat_completion_metadata",
        sa.Column("completion_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
    )
    op.create_index(
        "ix_chat_completion_metadata_pair", "chat_completion_metadata", ["key", "value"]
    )


def downgrade() -> None:
    op.drop_table("chat_completion_metadata")
    op.drop_table("chat_completions")
