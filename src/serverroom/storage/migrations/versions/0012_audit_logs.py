"""The organization's audit log (``audit_logs``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_audit_logs"
down_revision = "0011_spend_limits"


def upgrade() -> None:
    op.create_table(
        "audit_logs",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("effective_at", sa.BigInteger(), nullable=False),
        sa.Column("actor_key_id", sa.String(64), nullable=True),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_logs_time", "audit_logs", ["effective_at"])
    op.create_index("ix_audit_logs_project_id", "audit_logs", ["project_id"])


def downgrade() -> None:
    op.drop_table("audit_logs")
