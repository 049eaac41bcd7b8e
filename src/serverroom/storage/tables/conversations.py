"""Tables of the Conversations API: conversations and their ordered items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False)

    __table_args__ = (Index("ix_conversations_project_id", "project_id"),)


class ConversationItemRow(Base):
    """One item of a conversation; ``seq`` orders items (and is the pagination key)."""

    __tablename__ = "conversation_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False)
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    __table_args__ = (
        Index("ix_conversation_items_conversation_id", "conversation_id", "seq"),
        Index("ix_conversation_items_id", "id"),
    )
