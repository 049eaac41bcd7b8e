"""Tables of the Responses API: one row per stored response.

A row keeps the full ``Response`` object as JSON (``body``), the input items of that turn with
their ids (``input_items``), and the columns lookups need (project, status, chain link).
``response_items`` says which response holds an item id, so ``item_reference`` input finds it.
A background response still running is owned by the replica running it (``owner``) until
``lease_until`` (epoch milliseconds), which that replica's heartbeat keeps moving.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
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


class ResponseItemRow(Base):
    """An item id (input or output) of a stored response: where ``item_reference`` finds it."""

    __tablename__ = "response_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    item_id: Mapped[str] = mapped_column(String(64), nullable=False)
    response_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("responses.id", ondelete="CASCADE"), nullable=False
    )

    __table_args__ = (
        Index("ix_response_items_lookup", "project_id", "item_id"),
        Index("ix_response_items_response", "response_id"),
    )
