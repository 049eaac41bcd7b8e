"""Tables of the Vector Stores API: stores, the files attached to them, file batches, and the
chunks that ingestion cuts a file into (its text, and its embedding as float32 bytes).

A store's file row is the attachment (its status, error, attributes and chunking); the file's
bytes stay in the Files API. ``claimed_by`` / ``claim_until`` (epoch ms) say which replica is
ingesting a file, so that two replicas never cut it twice and a dead one's work is taken over.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base, Listed


class VectorStoreRow(Listed, Base):
    __tablename__ = "vector_stores"

    name: Mapped[str] = mapped_column(String(512), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_active_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_vector_stores_project", "project_id"),)


class VectorStoreFileRow(Base):
    __tablename__ = "vector_store_files"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64), nullable=False)
    file_id: Mapped[str] = mapped_column(String(64), nullable=False)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    batch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    last_error: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    chunking: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claim_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ux_vector_store_files", "vector_store_id", "file_id", unique=True),
        Index("ix_vector_store_files_status", "status"),
    )


class VectorStoreFileBatchRow(Listed, Base):
    __tablename__ = "vector_store_file_batches"

    vector_store_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cancelled: Mapped[bool] = mapped_column(nullable=False, default=False)


class VectorChunkRow(Base):
    """One chunk of an attached file: its text and its L2-normalised embedding."""

    __tablename__ = "vector_store_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64), nullable=False)
    file_id: Mapped[str] = mapped_column(String(64), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (Index("ix_vector_store_chunks_file", "vector_store_id", "file_id"),)
