"""Table of the Files API: one row per uploaded (or batch-produced) file.

The bytes live in the blob directory (``Settings.resolved_files_dir()``), named by file id, or
with ``files_store = "database"`` in ``file_chunks`` rows; the file row keeps the metadata.
``seq`` orders the cursor pages.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base, Listed


class FileRow(Listed, Base):
    __tablename__ = "files"

    filename: Mapped[str] = mapped_column(String(512), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_files_project_purpose", "project_id", "purpose"),)


class FileChunkRow(Base):
    """A piece of a file's bytes, for the database blob store (``api/files/blobs.py``)."""

    __tablename__ = "file_chunks"

    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
