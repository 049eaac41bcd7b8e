"""Rows of the Vector Stores API: stores, attached files, file batches and chunks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from serverroom.api.lists import Order
from serverroom.errors import NotFoundError
from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, owned_or
from serverroom.storage.tables.vector_stores import (
    VectorChunkRow,
    VectorStoreFileBatchRow,
    VectorStoreFileRow,
    VectorStoreRow,
)

STATES = ("in_progress", "completed", "failed", "cancelled")
TOUCH_SECONDS = 60


def store_not_found(store_id: str) -> NotFoundError:
    return NotFoundError(f"No vector store found with id '{store_id}'.", param="vector_store_id")


def file_not_found(store_id: str, file_id: str) -> NotFoundError:
    return NotFoundError(
        f"No file found with id '{file_id}' in vector store '{store_id}'.", param="file_id"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


class VectorStoreRepository(Repository):
    async def store(self, project_id: str, store_id: str) -> VectorStoreRow:
        async with self.db.session() as session:
            missing = store_not_found(store_id)
            return await owned_or(session, VectorStoreRow, store_id, project_id, missing)

    async def stores(
        self, project_id: str, *, after: str | None, limit: int, order: Order, before: str | None
    ) -> tuple[list[VectorStoreRow], bool]:
        async with self.db.session() as session:
            query = select(VectorStoreRow).where(VectorStoreRow.project_id == project_id)
            return await seq_page(
                session,
                VectorStoreRow,
                query,
                project_id,
                after=after,
                limit=limit,
                order=order,
                before=before,
            )

    async def update_store(self, project_id: str, store_id: str, **values: Any) -> VectorStoreRow:
        async with self.db.session() as session:
            missing = store_not_found(store_id)
            row = await owned_or(session, VectorStoreRow, store_id, project_id, missing)
            for name, value in values.items():
                setattr(row, name, value)
        return row

    async def touch(self, store_id: str, now: int) -> None:
        """Mark the store active (a search); written at most once a minute, since expiry
        counts in days and a search should not cost a write each time."""
        s = VectorStoreRow
        async with self.db.session() as session:
            await session.execute(
                update(s)
                .where(s.id == store_id, s.last_active_at < now - TOUCH_SECONDS)
                .values(last_active_at=now)
            )

    async def delete_store(self, project_id: str, store_id: str) -> None:
        async with self.db.session() as session:
            missing = store_not_found(store_id)
            row = await owned_or(session, VectorStoreRow, store_id, project_id, missing)
            for table in (VectorChunkRow, VectorStoreFileRow, VectorStoreFileBatchRow):
                await session.execute(delete(table).where(table.vector_store_id == store_id))
            await session.delete(row)

    async def counts(self, store_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per store: its files by status, and ``usage_bytes``."""
        out = {sid: {**dict.fromkeys(STATES, 0), "usage_bytes": 0} for sid in store_ids}
        if not store_ids:
            return out
        f = VectorStoreFileRow
        query = (
            select(f.vector_store_id, f.status, func.count(), func.sum(f.usage_bytes))
            .where(f.vector_store_id.in_(list(store_ids)))
            .group_by(f.vector_store_id, f.status)
        )
        async with self.db.session() as session:
            for store_id, status, count, used in await session.execute(query):
                out[store_id][status] = int(count)
                out[store_id]["usage_bytes"] += int(used or 0)
        return out

    async def attach(self, rows: Sequence[VectorStoreFileRow]) -> None:
        """Attach files (again: a file already attached starts over)."""
        async with self.db.session() as session:
            for row in rows:
                await self._forget_chunks(session, row.vector_store_id, row.file_id)
                await session.execute(
                    delete(VectorStoreFileRow).where(
                        VectorStoreFileRow.vector_store_id == row.vector_store_id,
                        VectorStoreFileRow.file_id == row.file_id,
                    )
                )
                session.add(row)

    async def _forget_chunks(self, session: Any, store_id: str, file_id: str) -> None:
        await session.execute(
            delete(VectorChunkRow).where(
                VectorChunkRow.vector_store_id == store_id, VectorChunkRow.file_id == file_id
            )
        )

    async def _one(self, table: Any, missing: Exception, *where: Any) -> Any:
        """The row of ``table`` that meets ``where``, else ``missing`` is raised."""
        async with self.db.session() as session:
            row = await session.scalar(select(table).where(*where))
        if row is None:
            raise missing
        return row

    async def file(self, project_id: str, store_id: str, file_id: str) -> VectorStoreFileRow:
        f = VectorStoreFileRow
        missing = file_not_found(store_id, file_id)
        row: VectorStoreFileRow = await self._one(
            f,
            missing,
            f.vector_store_id == store_id,
            f.file_id == file_id,
            f.project_id == project_id,
        )
        return row

    async def files(
        self,
        store_id: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        status: str | None = None,
        batch_id: str | None = None,
        before: str | None = None,
    ) -> tuple[list[VectorStoreFileRow], bool]:
        """A page of the store's files (``after``/``before`` are file ids, as the SDK pages)."""
        f = VectorStoreFileRow
        query = select(f).where(f.vector_store_id == store_id)
        if status is not None:
            query = query.where(f.status == status)
        if batch_id is not None:
            query = query.where(f.batch_id == batch_id)

        def seq_of(file_id: str) -> Any:
            where = (f.vector_store_id == store_id, f.file_id == file_id)
            return select(f.seq).where(*where).scalar_subquery()

        ascending = order == "asc"
        backwards = before is not None and after is None
        if after is not None:
            query = query.where(f.seq > seq_of(after) if ascending else f.seq < seq_of(after))
        elif before is not None:
            query = query.where(f.seq < seq_of(before) if ascending else f.seq > seq_of(before))
        forwards = ascending != backwards
        query = query.order_by(f.seq.asc() if forwards else f.seq.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = list(await session.scalars(query))
        page = rows[:limit]
        return (page[::-1] if backwards else page), len(rows) > limit

    async def set_attributes(
        self, project_id: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> VectorStoreFileRow:
        await self.file(project_id, store_id, file_id)
        async with self.db.session() as session:
            await session.execute(
                update(VectorStoreFileRow)
                .where(
                    VectorStoreFileRow.vector_store_id == store_id,
                    VectorStoreFileRow.file_id == file_id,
                )
                .values(attributes=attributes)
            )
        return await self.file(project_id, store_id, file_id)

    async def detach(self, project_id: str, store_id: str, file_id: str) -> None:
        row = await self.file(project_id, store_id, file_id)
        async with self.db.session() as session:
            await self._forget_chunks(session, store_id, file_id)
            await session.execute(
                delete(VectorStoreFileRow).where(VectorStoreFileRow.seq == row.seq)
            )

    async def completed_files(self, store_id: str) -> list[VectorStoreFileRow]:
        async with self.db.session() as session:
            return list(
                await session.scalars(
                    select(VectorStoreFileRow).where(
                        VectorStoreFileRow.vector_store_id == store_id,
                        VectorStoreFileRow.status == "completed",
                    )
                )
            )

    async def file_texts(self, store_id: str, file_id: str) -> list[str]:
        c = VectorChunkRow
        async with self.db.session() as session:
            rows = await session.scalars(
                select(c.text)
                .where(c.vector_store_id == store_id, c.file_id == file_id)
                .order_by(c.position)
            )
            return list(rows)

    async def batch(self, project_id: str, store_id: str, batch_id: str) -> VectorStoreFileBatchRow:
        b = VectorStoreFileBatchRow
        missing = NotFoundError(
            f"No file batch found with id '{batch_id}' in vector store '{store_id}'.",
            param="batch_id",
        )
        row: VectorStoreFileBatchRow = await self._one(
            b, missing, b.id == batch_id, b.vector_store_id == store_id, b.project_id == project_id
        )
        return row

    async def batch_counts(self, batch_id: str) -> dict[str, int]:
        f = VectorStoreFileRow
        out = dict.fromkeys(STATES, 0)
        async with self.db.session() as session:
            rows = await session.execute(
                select(f.status, func.count()).where(f.batch_id == batch_id).group_by(f.status)
            )
            for status, count in rows:
                out[status] = int(count)
        return out

    async def cancel_batch(self, project_id: str, store_id: str, batch_id: str) -> None:
        """Files of the batch not yet ingested are cancelled (the batch with them)."""
        await self.batch(project_id, store_id, batch_id)
        f = VectorStoreFileRow
        async with self.db.session() as session:
            await session.execute(
                update(VectorStoreFileBatchRow)
                .where(VectorStoreFileBatchRow.id == batch_id)
                .values(cancelled=True)
            )
            await session.execute(
                update(f)
                .where(f.batch_id == batch_id, f.status == "in_progress")
                .values(status="cancelled", claimed_by=None, claim_until=None)
            )

    # -- ingestion ------------------------------------------------------------------------

    async def claim(self, owner: str, lease_ms: int) -> VectorStoreFileRow | None:
        """One file waiting for ingestion (or whose ingesting replica died), claimed."""
        f = VectorStoreFileRow
        now = now_ms()
        async with self.db.session() as session:
            candidates = await session.scalars(
                select(f)
                .where(f.status == "in_progress", or_(f.claim_until.is_(None), f.claim_until < now))
                .order_by(f.seq)
                .limit(8)
            )
            for row in list(candidates):
                taken = await session.execute(
                    update(f)
                    .where(
                        f.seq == row.seq,
                        f.status == "in_progress",
                        or_(f.claim_until.is_(None), f.claim_until < now),
                    )
                    .values(claimed_by=owner, claim_until=now + lease_ms)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    await session.refresh(row)
                    return row
        return None

    async def renew(self, row: VectorStoreFileRow, lease_ms: int) -> None:
        f = VectorStoreFileRow
        async with self.db.session() as session:
            await session.execute(
                update(f)
                .where(f.seq == row.seq, f.claimed_by == row.claimed_by)
                .values(claim_until=now_ms() + lease_ms)
            )

    async def release(self, row: VectorStoreFileRow) -> None:
        """Give up a claim (at shutdown): the file waits for the next worker."""
        f = VectorStoreFileRow
        async with self.db.session() as session:
            await session.execute(
                update(f)
                .where(f.seq == row.seq, f.claimed_by == row.claimed_by)
                .values(claimed_by=None, claim_until=None)
            )

    async def finish(
        self,
        row: VectorStoreFileRow,
        chunks: Sequence[tuple[int, str, int, bytes]],
        *,
        usage_bytes: int = 0,
        error: dict[str, str] | None = None,
    ) -> bool:
        """Store a claimed file's chunks and its final status in one transaction; False if
        the claim was lost (the file was detached, or attached again)."""
        f = VectorStoreFileRow
        async with self.db.session() as session:
            done = await session.execute(
                update(f)
                .where(f.seq == row.seq, f.claimed_by == row.claimed_by, f.status == "in_progress")
                .values(
                    status="failed" if error else "completed",
                    last_error=error,
                    usage_bytes=usage_bytes,
                    claimed_by=None,
                    claim_until=None,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return False
            await self._forget_chunks(session, row.vector_store_id, row.file_id)
            if chunks:
                owner = {"vector_store_id": row.vector_store_id, "file_id": row.file_id}
                names = ("position", "text", "tokens", "embedding")
                values = [{**owner, **dict(zip(names, c, strict=True))} for c in chunks]
                await session.execute(insert(VectorChunkRow), values)
        return True

    async def chunk_version(self, store_id: str) -> tuple[int, int]:
        """What changes when the store's chunks do: their count and highest id."""
        c = VectorChunkRow
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(func.count(), func.max(c.id)).where(c.vector_store_id == store_id)
                )
            ).one()
        return int(row[0]), int(row[1] or 0)

    async def chunks(self, store_id: str, after_id: int = 0) -> list[tuple[int, str, str, bytes]]:
        """The store's chunks (those with an id above ``after_id``), oldest first."""
        c = VectorChunkRow
        async with self.db.session() as session:
            rows = await session.execute(
                select(c.id, c.file_id, c.text, c.embedding)
                .where(c.vector_store_id == store_id, c.id > after_id)
                .order_by(c.id)
            )
            return [(int(i), str(f), str(t), bytes(e)) for i, f, t, e in rows]
