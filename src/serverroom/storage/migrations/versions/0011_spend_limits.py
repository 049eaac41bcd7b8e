"""Per-project monthly spend limits (``projects.monthly_spend_limit_usd``; null: none)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_spend_limits"
down_revision = "0003_accounts"


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("monthly_spend_limit_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("monthly_spend_limit_usd")
