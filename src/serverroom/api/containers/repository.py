"""Rows of the Containers API: containers and their files, each scoped by project (another
project's ids are not found). File bytes are the blob store's (``api/files/blobs.py``): the
methods that drop files return their blob ids for the caller to remove."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from serverroom.api.lists import PageQuery
from serverroom.errors import NotFoundError
from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, changed, owned, owned_or
from serverroom.storage.tables.containers import ContainerFileRow, ContainerRow

TOUCH_SECONDS = 5  # last_active_at is written at most this often
RowT = TypeVar("RowT", ContainerRow, ContainerFileRow)


def container_not_found(container_id: str) -> NotFoundError:
    return NotFoundError(f"No container found with id '{container_id}'.", param="container_id")


def file_not_found(container_id: str, file_id: str) -> NotFoundError:
    return NotFoundError(
        f"No file found with id '{file_id}' in container '{container_id}'.", param="file_id"
    )


def expired_by(now: int) -> ColumnElement[bool]:
    """Containers whose last activity is ``expires_minutes`` or more before ``now``."""
    c = ContainerRow
    return c.last_active_at + c.expires_minutes * 60 <= now


class ContainerRepository(Repository):
    async def container(self, project_id: str, container_id: str) -> ContainerRow:
        missing = container_not_found(container_id)
        return await self.found_owned(ContainerRow, container_id, project_id, missing)

    async def containers(
        self, project_id: str, page: PageQuery, name: str | None = None
    ) -> tuple[list[ContainerRow], bool]:
        query = select(ContainerRow).where(ContainerRow.project_id == project_id)
        if name is not None:
            query = query.where(ContainerRow.name == name)
        return await self._page(ContainerRow, query, project_id, page)

    async def _page(
        self,
        table: Any,
        query: Select[RowT],
        project_id: str,
        page: PageQuery,
        within: tuple[ColumnElement[bool], ...] = (),
    ) -> tuple[list[RowT], bool]:
        async with self.db.session() as session:
            return await seq_page(
                session,
                table,
                query,
                project_id,
                after=page.after,
                limit=page.limit,
                order=page.order,
                within=within,
            )

    async def touch(self, container_id: str, now: int) -> bool:
        """Record activity at ``now`` (unless some was recorded in the last seconds)."""
        c = ContainerRow
        async with self.db.session() as session:
            result = await session.execute(
                update(c)
                .where(c.id == container_id, c.last_active_at < now - TOUCH_SECONDS)
                .values(last_active_at=now)
            )
        return changed(result)

    async def delete_container(self, project_id: str, container_id: str) -> list[str]:
        """Delete a container and its files; the files' blob ids."""
        f = ContainerFileRow
        async with self.db.session() as session:
            missing = container_not_found(container_id)
            row = await owned_or(session, ContainerRow, container_id, project_id, missing)
            blobs = list(await session.scalars(select(f.blob_id).where(f.container_id == row.id)))
            await session.execute(delete(f).where(f.container_id == row.id))
            await session.delete(row)
        return blobs

    async def discard_expired(self, now: int, limit: int) -> list[str]:
        """Delete up to ``limit`` files of expired containers; their blob ids."""
        f = ContainerFileRow
        gone = select(ContainerRow.id).where(expired_by(now))
        async with self.db.session() as session:
            rows = list(
                await session.execute(
                    select(f.id, f.blob_id).where(f.container_id.in_(gone)).limit(limit)
                )
            )
            if rows:
                await session.execute(delete(f).where(f.id.in_([r[0] for r in rows])))
        return [str(r[1]) for r in rows]

    # -- files ----------------------------------------------------------------------------

    async def file(self, project_id: str, container_id: str, file_id: str) -> ContainerFileRow:
        f = ContainerFileRow
        async with self.db.session() as session:
            row = await owned(session, f, file_id, project_id, f.container_id == container_id)
        if row is None:
            raise file_not_found(container_id, file_id)
        return row

    async def files(
        self, project_id: str, container_id: str, page: PageQuery
    ) -> tuple[list[ContainerFileRow], bool]:
        f = ContainerFileRow
        within = (f.container_id == container_id,)
        query = select(f).where(f.project_id == project_id, *within)
        return await self._page(f, query, project_id, page, within)

    async def all_files(self, container_id: str) -> list[ContainerFileRow]:
        f = ContainerFileRow
        async with self.db.session() as session:
            query = select(f).where(f.container_id == container_id).order_by(f.seq)
            return list(await session.scalars(query))

    async def put_file(self, row: ContainerFileRow) -> list[str]:
        """Store ``row``, replacing the file at its path; the replaced file's blob ids."""
        f = ContainerFileRow
        values = {c.key: getattr(row, c.key) for c in f.__table__.columns if c.key != "seq"}
        try:
            return await self._put(values)
        except IntegrityError:  # another writer took the path meanwhile: replace its file
            return await self._put(values)

    async def _put(self, values: dict[str, Any]) -> list[str]:
        f = ContainerFileRow
        same = (f.container_id == values["container_id"], f.path == values["path"])
        async with self.db.session() as session:
            replaced = list(await session.scalars(select(f.blob_id).where(*same)))
            await session.execute(delete(f).where(*same))
            await session.execute(insert(f).values(**values))
        return replaced

    async def delete_file(self, project_id: str, container_id: str, file_id: str) -> str:
        """Delete a container file; its blob id."""
        row = await self.file(project_id, container_id, file_id)
        async with self.db.session() as session:
            await session.execute(delete(ContainerFileRow).where(ContainerFileRow.seq == row.seq))
        return row.blob_id
