"""Storage of batches and their request lines (see ``storage/tables/batches.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update

from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, changed
from serverroom.storage.tables.batches import BatchLineRow, BatchRow

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
CANCELLABLE = ("validating", "in_progress")


@dataclass(frozen=True)
class PendingLine:
    line: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LineUsage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0


class BatchRepository(Repository):
    """Batches and their lines (a batch's project is checked by the service)."""

    async def get(self, batch_id: str, project_id: str | None = None) -> BatchRow | None:
        query = select(BatchRow).where(BatchRow.id == batch_id)
        if project_id is not None:
            query = query.where(BatchRow.project_id == project_id)
        async with self.db.session() as session:
            return (await session.execute(query)).scalar_one_or_none()

    async def page(
        self, project_id: str, *, after: str | None, limit: int
    ) -> tuple[list[BatchRow], bool]:
        async with self.db.session() as session:
            query = select(BatchRow).where(BatchRow.project_id == project_id)
            return await seq_page(
                session, BatchRow, query, project_id, after=after, limit=limit, order="desc"
            )

    async def update(
        self, batch_id: str, *, only_from: tuple[str, ...] | None = None, **values: Any
    ) -> bool:
        """Set columns; with ``only_from``, only while the status is one of those."""
        query = update(BatchRow).where(BatchRow.id == batch_id)
        if only_from is not None:
            query = query.where(BatchRow.status.in_(only_from))
        async with self.db.session() as session:
            return changed(await session.execute(query.values(**values)))

    async def next_active(self) -> str | None:
        """The oldest batch that still has work (any project)."""
        async with self.db.session() as session:
            result = await session.execute(
                select(BatchRow.id)
                .where(BatchRow.status.in_(ACTIVE))
                .order_by(BatchRow.seq.asc())
                .limit(1)
            )
            return result.scalar_one_or_none()

    async def start(
        self, batch_id: str, lines: list[PendingLine], model: str | None, now: int
    ) -> bool:
        """Store the validated lines and move ``validating`` → ``in_progress`` atomically; the
        conditional update comes first, so of two replicas validating one batch only the one
        that moves it stores lines (the other's update finds it moved and stores nothing)."""
        async with self.db.session() as session:
            moved = await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.status == "validating")
                .values(status="in_progress", in_progress_at=now, total=len(lines), model=model)
            )
            if not changed(moved):
                return False
            session.add_all(
                BatchLineRow(
                    batch_id=batch_id,
                    line=item.line,
                    custom_id=item.custom_id,
                    body=item.body,
                    status="pending",
                    result=None,
                )
                for item in lines
            )
        return True

    async def pending(self, batch_id: str) -> list[PendingLine]:
        async with self.db.session() as session:
            result = await session.execute(
                select(BatchLineRow.line, BatchLineRow.custom_id, BatchLineRow.body)
                .where(BatchLineRow.batch_id == batch_id, BatchLineRow.status == "pending")
                .order_by(BatchLineRow.line)
            )
            return [PendingLine(line, custom_id, body) for line, custom_id, body in result]

    async def claim(
        self, batch_id: str, owner: str, count: int, *, now: int, until: int
    ) -> list[PendingLine]:
        """Up to ``count`` pending lines that nobody holds (or whose holder's claim ran out
        before ``now``), now held by ``owner`` until ``until`` (epoch ms). Concurrent claims
        on PostgreSQL skip each other's rows (``FOR UPDATE SKIP LOCKED``); the update is
        conditional too, so two claims never take one line on any database."""
        free = or_(BatchLineRow.claim_until.is_(None), BatchLineRow.claim_until < now)
        pending = (BatchLineRow.batch_id == batch_id, BatchLineRow.status == "pending")
        async with self.db.session() as session:
            candidates = (
                await session.scalars(
                    select(BatchLineRow.seq)
                    .where(*pending, free)
                    .order_by(BatchLineRow.line)
                    .limit(count)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not candidates:
                return []
            await session.execute(
                update(BatchLineRow)
                .where(BatchLineRow.seq.in_(candidates), free)
                .values(claimed_by=owner, claim_until=until)
            )
            result = await session.execute(
                select(BatchLineRow.line, BatchLineRow.custom_id, BatchLineRow.body)
                .where(
                    BatchLineRow.seq.in_(candidates),
                    BatchLineRow.claimed_by == owner,
                    BatchLineRow.claim_until == until,
                )
                .order_by(BatchLineRow.line)
            )
            return [PendingLine(line, custom_id, body) for line, custom_id, body in result]

    async def claim_batch(self, batch_id: str, owner: str, *, now: int, until: int) -> bool:
        """Hold a batch while ``owner`` writes its files (a claim that ran out is taken over);
        whether ``owner`` holds it now."""
        free = or_(
            BatchRow.claim_until.is_(None), BatchRow.claim_until < now, BatchRow.claimed_by == owner
        )
        async with self.db.session() as session:
            taken = await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, free)
                .values(claimed_by=owner, claim_until=until)
            )
        return changed(taken)

    async def renew_claims(self, owner: str, until: int | None) -> None:
        """Move the end of every claim ``owner`` holds on a pending line (``None``: give
        them up, at shutdown, so another worker takes them at once)."""
        async with self.db.session() as session:
            await session.execute(
                update(BatchLineRow)
                .where(BatchLineRow.claimed_by == owner, BatchLineRow.status == "pending")
                .values(claim_until=until)
            )

    async def finish(
        self, batch_id: str, line: int, ok: bool, result: dict[str, Any], usage: LineUsage
    ) -> bool:
        """Record one line's result and advance the counters in one transaction.

        Only a still-pending line is finished, so a line is never counted twice.
        """
        async with self.db.session() as session:
            finished = await session.execute(
                update(BatchLineRow)
                .where(
                    BatchLineRow.batch_id == batch_id,
                    BatchLineRow.line == line,
                    BatchLineRow.status == "pending",
                )
                .values(status="completed" if ok else "failed", result=result)
            )
            if not changed(finished):
                return False
            counter = BatchRow.completed if ok else BatchRow.failed
            await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id)
                .values(
                    {
                        counter: counter + 1,
                        BatchRow.input_tokens: BatchRow.input_tokens + usage.input_tokens,
                        BatchRow.cached_tokens: BatchRow.cached_tokens + usage.cached_tokens,
                        BatchRow.output_tokens: BatchRow.output_tokens + usage.output_tokens,
                    }
                )
            )
        return True

    async def results(self, batch_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(status, result) of every finished line, in input order."""
        async with self.db.session() as session:
            result = await session.execute(
                select(BatchLineRow.status, BatchLineRow.result)
                .where(BatchLineRow.batch_id == batch_id, BatchLineRow.status != "pending")
                .order_by(BatchLineRow.line)
            )
            return [(status, body) for status, body in result if body is not None]

    async def count_lines(self, batch_id: str) -> int:
        async with self.db.session() as session:
            result = await session.execute(
                select(func.count())
                .select_from(BatchLineRow)
                .where(BatchLineRow.batch_id == batch_id)
            )
            return int(result.scalar_one())
