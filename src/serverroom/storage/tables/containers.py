"""Tables of the Containers API: containers, and the files in them.

A container has no stored status: it is ``running`` until ``expires_minutes`` after it was
last active (``last_active_at``), then ``expired`` (both computed, also in SQL, so expired
containers' files can be found and discarded). A container file's bytes live in the app's
blob store (``api/files/blobs.py``) under ``blob_id``, so replicas share them; ``path`` is
its path in the container (``/mnt/data/...``), one file per path.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base, Listed


class ContainerRow(Listed, Base):
    __tablename__ = "containers"

    name: Mapped[str] = mapped_column(String(512), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_active_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    memory_limit: Mapped[str] = mapped_column(String(8), nullable=False)

    __table_args__ = (Index("ix_containers_project", "project_id"),)


class ContainerFileRow(Listed, Base):
    __tablename__ = "container_files"

    container_id: Mapped[str] = mapped_column(String(64), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob_id: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (Index("ux_container_files_path", "container_id", "path", unique=True),)
