"""File bytes in the database (``files_store = "database"``), in chunks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_file_chunks"
down_revision = "0006_replica_claims"


def upgrade() -> None:
    op.create_table(
        "file_chunks",
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
