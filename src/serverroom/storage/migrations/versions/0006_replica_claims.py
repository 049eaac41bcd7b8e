"""Work owned by a replica until a time its heartbeat renews: a background response's lease
(``responses.owner`` / ``lease_until``), a batch line's claim and a batch's, while one replica
writes its files (``claimed_by`` / ``claim_until``), all in epoch milliseconds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_replica_claims"
down_revision = ("0002_responses", "0004_files_batches")

COLUMNS = {
    "responses": ("owner", "lease_until"),
    "batch_lines": ("claimed_by", "claim_until"),
    "batches": ("claimed_by", "claim_until"),
}


def upgrade() -> None:
    for table_name, (who, until) in COLUMNS.items():
        with op.batch_alter_table(table_name) as table:
            table.add_column(sa.Column(who, sa.String(64), nullable=True))
            table.add_column(sa.Column(until, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table_name, columns in COLUMNS.items():
        with op.batch_alter_table(table_name) as table:
            for column in reversed(columns):
                table.drop_column(column)
