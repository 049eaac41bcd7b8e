"""Storage of files' metadata rows (their bytes: ``blobs.py``)."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, changed, owned
from serverroom.storage.tables.files import FileRow
from serverroom.storage.tables.vector_stores import VectorChunkRow, VectorStoreFileRow


def _live(now: int) -> ColumnElement[bool]:
    return or_(FileRow.expires_at.is_(None), FileRow.expires_at > now)


async def _leave_vector_stores(session: AsyncSession, file_ids: list[str]) -> None:
    for table in (VectorChunkRow, VectorStoreFileRow):
        await session.execute(delete(table).where(table.file_id.in_(file_ids)))


class FileRepository(Repository):
    """File rows, scoped by project (expired files are not found)."""

    async def filenames(self, file_ids: list[str]) -> dict[str, str]:
        if not file_ids:
            return {}
        async with self.db.session() as session:
            rows = await session.execute(
                select(FileRow.id, FileRow.filename).where(FileRow.id.in_(file_ids))
            )
            return {str(i): str(name) for i, name in rows}

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
        """Delete a file's row; it leaves every vector store it was in (with its chunks)."""
        async with self.db.session() as session:
            result = await session.execute(
                delete(FileRow).where(FileRow.id == file_id, FileRow.project_id == project_id)
            )
            if changed(result):
                await _leave_vector_stores(session, [file_id])
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
            await _leave_vector_stores(session, ids)
