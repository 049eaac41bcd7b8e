"""Item ids of stored responses (for ``item_reference`` input), filled in for those stored."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010_response_items"
down_revision = "0009_containers"

_RESPONSES = sa.table(
    "responses",
    sa.column("id", sa.String(64)),
    sa.column("project_id", sa.String(64)),
    sa.column("body", sa.JSON()),
    sa.column("input_items", sa.JSON()),
)


def upgrade() -> None:
    items = op.create_table(
        "response_items",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column(
            "response_id",
            sa.String(64),
            sa.ForeignKey("responses.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_response_items_lookup", "response_items", ["project_id", "item_id"])
    op.create_index("ix_response_items_response", "response_items", ["response_id"])
    bind = op.get_bind()
    for row in bind.execute(sa.select(_RESPONSES)).mappings():
        found: list[Any] = [*(row["input_items"] or []), *((row["body"] or {}).get("output") or [])]
        ids = [i.get("id") for i in found if isinstance(i, dict)]
        values = [
            {"project_id": row["project_id"], "item_id": i, "response_id": row["id"]}
            for i in ids
            if isinstance(i, str) and 0 < len(i) <= 64
        ]
        if values:
            bind.execute(sa.insert(items), values)


def downgrade() -> None:
    op.drop_table("response_items")
