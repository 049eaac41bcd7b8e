"""Where file bytes live: a directory (the default) or the database (replicas with no shared
filesystem: every replica reads what any replica stored).

Both stores keep a file as its id's bytes and write it whole before the file's row exists, so
a file is never seen half-written. The database store keeps 1 MiB chunks, so a large upload is
streamed in and out without holding it in memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import delete, func, select

from serverroom.storage.db import Database
from serverroom.storage.tables.files import FileChunkRow

CHUNK = 1024 * 1024


class BlobStore(Protocol):
    async def write_stream(self, source: BinaryIO, file_id: str, limit: int) -> int | None:
        """Copy ``source`` in; the size, or ``None`` (nothing kept) when it exceeds ``limit``."""

    async def write_bytes(self, file_id: str, data: bytes) -> None: ...

    async def read_bytes(self, file_id: str) -> bytes:
        """The whole file; ``FileNotFoundError`` when there is none."""

    def chunks(self, file_id: str) -> AsyncIterator[bytes]:
        """The file in pieces (``FileNotFoundError`` before the first when there is none)."""

    async def remove(self, file_id: str) -> None: ...

    def local_path(self, file_id: str) -> Path | None:
        """The file's path when it is on this machine's disk (served with sendfile)."""


class DirectoryBlobs:
    """File bytes on disk, one file per id; writes go through a temp file and a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, file_id: str) -> Path:
        return self.root / file_id

    def local_path(self, file_id: str) -> Path | None:
        path = self.path(file_id)
        return path if path.exists() else None

    def _copy(self, source: BinaryIO, file_id: str, limit: int) -> int | None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{file_id}"
        size = 0
        with tmp.open("wb") as out:
            while chunk := source.read(CHUNK):
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

    async def chunks(self, file_id: str) -> AsyncIterator[bytes]:
        yield await self.read_bytes(file_id)

    async def remove(self, file_id: str) -> None:
        await asyncio.to_thread(self.path(file_id).unlink, True)


class DatabaseBlobs:
    """File bytes in the database, in ``CHUNK``-sized rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def local_path(self, file_id: str) -> Path | None:
        return None

    async def write_stream(self, source: BinaryIO, file_id: str, limit: int) -> int | None:
        size, index = 0, 0
        try:
            while chunk := await asyncio.to_thread(source.read, CHUNK):
                size += len(chunk)
                if size > limit:
                    await self.remove(file_id)
                    return None
                async with self.db.session() as session:
                    session.add(FileChunkRow(file_id=file_id, index=index, data=chunk))
                index += 1
        except BaseException:
            await self.remove(file_id)
            raise
        return size

    async def write_bytes(self, file_id: str, data: bytes) -> None:
        async with self.db.session() as session:
            session.add_all(
                FileChunkRow(file_id=file_id, index=i, data=data[start : start + CHUNK])
                for i, start in enumerate(range(0, max(len(data), 1), CHUNK))
            )

    async def chunks(self, file_id: str) -> AsyncIterator[bytes]:
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(FileChunkRow)
                .where(FileChunkRow.file_id == file_id)
            )
        if not count:
            raise FileNotFoundError(file_id)
        for index in range(int(count)):
            async with self.db.session() as session:
                data = await session.scalar(
                    select(FileChunkRow.data).where(
                        FileChunkRow.file_id == file_id, FileChunkRow.index == index
                    )
                )
            yield bytes(data or b"")

    async def read_bytes(self, file_id: str) -> bytes:
        return b"".join([piece async for piece in self.chunks(file_id)])

    async def remove(self, file_id: str) -> None:
        async with self.db.session() as session:
            await session.execute(delete(FileChunkRow).where(FileChunkRow.file_id == file_id))
