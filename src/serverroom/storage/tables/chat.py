"""Tables of stored Chat Completions (``store: true``).

A row keeps the ``ChatCompletion`` as JSON (``body``) and the request's messages with their ids
(``messages``); ``seq`` orders a project's completions and is the list cursor. Metadata pairs
are also kept one per row in ``chat_completion_metadata`` so that ``metadata[key]=value`` list
filters are plain indexed equality on every database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base, Listed


class ChatCompletionRow(Listed, Base):
    __tablename__ = "chat_completions"

    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)

    __table_args__ = (Index("ix_chat_completions_project_seq", "project_id", "seq"),)


class ChatCompletionMetadataRow(Base):
    """One metadata pair of a stored completion (the filterable copy of ``metadata``)."""

    __tablename__ = "chat_completion_metadata"

    completion_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512), nullable=False)

    __table_args__ = (Index("ix_chat_completion_metadata_pair", "key", "value"),)
