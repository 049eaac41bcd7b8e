"""Tables of the Responses API: one row per stored response.

A row keeps the full ``Response`` object as JSON (``body``), the input items of that turn with
their ids (``input_items``), and the columns lookups need (project, status, chain link).
A background response still running is owned by the replica running it (``owner``) until
``lease_until`` (epoch milliseconds), which that replica's heartbeat keeps moving.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base


class ResponseRow(Base):
    """A stored response (``store: true``), including background ones still running."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    previous_response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    background: Mapped[bool] = mapped_column(nullable=False, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_responses_project_id", "project_id"),
        Index("ix_responses_status", "status"),
    )
