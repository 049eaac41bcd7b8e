"""Audit entries made in a session (the dashboard, the CLI): who and from where."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_audit_sessions"
down_revision = "0013_webhooks"


def upgrade() -> None:
    op.add_column("audit_logs", sa.Column("actor_user", sa.String(128), nullable=True))
    op.add_column("audit_logs", sa.Column("actor_ip", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_logs", "actor_ip")
    op.drop_column("audit_logs", "actor_user")
