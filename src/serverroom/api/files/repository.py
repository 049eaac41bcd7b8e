"""Storage of files: metadata rows in the database, bytes in the blob directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import ColumnElement, delete, or_, select

from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, changed, owned
from serverroom.storage.tables.files import FileRow


class BlobStore:
    """File bytes on disk, one file per id; writes go through a temp file and a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, file_id: str) -> Path:
        return self.root / file_id

    def _copy(self, source: BinaryIO, file_id: str, limit: int) -> int | None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{file_id}"
        size = 0
        with tmp.open("wb") as out:
            while chunk := source.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    out.close()
                    tmp.unlink(missing_ok=True)
                    return None
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path(file_id))
        return size

    async def write_stream(self, source: BinaryIO, file_id: str, limit: int) -> int | None:
        """Copy ``source`` in; the size, or ``None`` (nothing kept) when it exceeds ``limit``."""
        return await asyncio.to_thread(self._copy, source, file_id, limit)

    def _write(self, file_id: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{file_id}"
        tmp.write_bytes(data)
        tmp.replace(self.path(file_id))

    async def write_bytes(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, file_id, data)

    async def read_bytes(self, file_id: str) -> bytes:
        return await asyncio.to_thread(self.path(file_id).read_bytes)

    async def remove(self, file_id: str) -> None:
        await asyncio.to_thread(self.path(file_id).unlink, True)

    def copy_to(self, file_id: str, target: Path) -> None:
        shutil.copyfile(self.path(file_id), target)


def _live(now: int) -> ColumnElement[bool]:
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


class FileRepository(Repository):
    """File rows, scoped by project (expired files are not found)."""

    async def get(self, project_id: str, file_id: str) -> FileRow | None:
        async with self.db.session() as session:
            return await owned(session, FileRow, file_id, project_id, _live(int(time.time())))

    async def page(
        self, project_id: str, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[FileRow], bool]:
        now = int(time.time())
        async with self.db.session() as session:
            query = select(FileRow).where(FileRow.project_id == project_id, _live(now))
            if purpose:
                query = query.where(FileRow.purpose == purpose)
            return await seq_page(
                session, FileRow, query, project_id, after=after, limit=limit, order=order
            )

    async def delete(self, project_id: str, file_id: str) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                delete(FileRow).where(FileRow.id == file_id, FileRow.project_id == project_id)
            )
            return changed(result)

    async def expired(self, now: int) -> list[str]:
        async with self.db.session() as session:
            result = await session.execute(
                select(FileRow.id).where(FileRow.expires_at.is_not(None), FileRow.expires_at <= now)
            )
            return list(result.scalars())

    async def delete_ids(self, ids: list[str]) -> None:
        if not ids:
            return
        async with self.db.session() as session:
            await session.execute(delete(FileRow).where(FileRow.id.in_(ids)))
