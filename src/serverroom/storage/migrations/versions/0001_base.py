"""Baseline: an empty schema every resource's migrations build on."""

from __future__ import annotations

revision = "0001_base"
down_revision = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
