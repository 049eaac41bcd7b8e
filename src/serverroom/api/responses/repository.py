"""Storage of responses: the only code that reads or writes the ``responses`` table.

Every lookup filters by ``project_id``, so another project's response is simply not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from serverroom.api.items import Item
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.storage.repository import Repository, changed
from serverroom.storage.tables.responses import ResponseItemRow, ResponseRow

ACTIVE = ("queued", "in_progress")
MAX_CHAIN = 100_000  # a bound on the recursive walk (chains cannot loop; this is a guard)
RESTART_ERROR = {
    "code": "server_error",
    "message": "The server restarted before the response completed.",
}


def not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param=param)


class ResponseRepository(Repository):
    """Responses of one database, scoped by project on every call."""

    async def save(
        self,
        project_id: str,
        body: dict[str, Any],
        input_items: list[Item],
        *,
        lease: tuple[str, int] | None = None,
    ) -> None:
        """Insert or replace a response (its body is the SDK ``Response`` as JSON); ``lease``
        (owner, until in epoch ms) for a background response this replica runs."""
        conversation = body.get("conversation") or {}
        async with self.db.session() as session:
            row = await session.get(ResponseRow, body["id"])
            if row is None:
                row = ResponseRow(id=body["id"], project_id=project_id, input_items=input_items)
                session.add(row)
            row.created_at = int(body["created_at"])
            row.status = str(body.get("status") or "completed")
            row.model = str(body["model"])
            row.previous_response_id = body.get("previous_response_id")
            row.conversation_id = conversation.get("id")
            row.background = bool(body.get("background"))
            row.body = body
            if lease is not None:
                row.owner, row.lease_until = lease
            await session.flush()  # the row exists before its items point at it
            await _index_items(session, row)

    async def get(self, project_id: str, response_id: str) -> ResponseRow:
        """The stored response, or ``NotFoundError``."""
        return await self.found_owned(ResponseRow, response_id, project_id, not_found(response_id))

    async def delete(self, project_id: str, response_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(ResponseRow).where(
                    ResponseRow.id == response_id, ResponseRow.project_id == project_id
                )
            )
        if not changed(result):
            raise not_found(response_id)

    async def update_status(
        self, project_id: str, response_id: str, body: dict[str, Any], *, only_if: tuple[str, ...]
    ) -> bool:
        """Replace the body if the row's status is one of ``only_if``; say whether it did."""
        async with self.db.session() as session:
            result = await session.execute(
                update(ResponseRow)
                .where(
                    ResponseRow.id == response_id,
                    ResponseRow.project_id == project_id,
                    ResponseRow.status.in_(only_if),
                )
                .values(status=body["status"], body=body)
            )
            if changed(result):
                row = await session.get(ResponseRow, response_id)
                if row is not None:
                    await _index_items(session, row)
        return changed(result)

    async def find_item(self, project_id: str, item_id: str) -> Item | None:
        """The newest stored response's item with this id (input or output), if any."""
        query = (
            select(ResponseRow)
            .join(ResponseItemRow, ResponseItemRow.response_id == ResponseRow.id)
            .where(ResponseItemRow.project_id == project_id, ResponseItemRow.item_id == item_id)
            .order_by(ResponseItemRow.seq.desc())
            .limit(1)
        )
        async with self.db.session() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        items = [*row.input_items, *(row.body.get("output") or [])]
        return next((item for item in items if item.get("id") == item_id), None)

    async def chain_items(self, project_id: str, previous_id: str) -> list[Item]:
        """Inputs and outputs of ``previous_id`` and every response before it, oldest first.

        One recursive query walks the chain (it stops at a deleted or foreign link), so a long
        chain costs one round trip, not one per turn.
        """
        link = (
            select(
                ResponseRow.id, ResponseRow.previous_response_id, literal_column("0").label("depth")
            )
            .where(ResponseRow.id == previous_id, ResponseRow.project_id == project_id)
            .cte("chain", recursive=True)
        )
        parent = aliased(ResponseRow)
        link = link.union_all(
            select(
                parent.id, parent.previous_response_id, link.c.depth + literal_column("1")
            ).where(
                parent.id == link.c.previous_response_id,
                parent.project_id == project_id,
                link.c.depth < MAX_CHAIN,
            )
        )
        query = (
            select(ResponseRow, link.c.depth)
            .join(link, ResponseRow.id == link.c.id)
            .order_by(link.c.depth.desc())
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        if not rows or rows[-1][1] != 0:
            raise not_found(previous_id, "previous_response_id")
        latest = rows[-1][0]
        if latest.status in ACTIVE:
            raise InvalidRequestError(
                f"Previous response with id '{previous_id}' is still {latest.status}.",
                param="previous_response_id",
            )
        return [
            item for row, _ in rows for item in [*row.input_items, *(row.body.get("output") or [])]
        ]

    async def renew(self, owner: str, until: int) -> int:
        """Extend the lease of every response ``owner`` still runs; how many there are."""
        async with self.db.session() as session:
            result = await session.execute(
                update(ResponseRow)
                .where(ResponseRow.owner == owner, ResponseRow.status.in_(ACTIVE))
                .values(lease_until=until)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def fail_interrupted(self, now: int, *, owner: str | None = None) -> int:
        """Mark failed the queued / in-progress responses whose lease ended before ``now``
        (epoch ms; rows with no lease count as ended), or, with ``owner``, all of that owner's
        (its replica is shutting down). A response whose owner is alive keeps running."""
        if owner is not None:
            which = ResponseRow.owner == owner
        else:
            which = or_(ResponseRow.lease_until.is_(None), ResponseRow.lease_until < now)
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(ResponseRow)
                    .where(ResponseRow.status.in_(ACTIVE), which)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                body = dict(row.body)
                body.update(status="failed", error=dict(RESTART_ERROR))
                row.status = "failed"
                row.body = body
        return len(rows)


async def _index_items(session: AsyncSession, row: ResponseRow) -> None:
    """Record where the response's item ids are (again, for a body replaced)."""
    await session.execute(delete(ResponseItemRow).where(ResponseItemRow.response_id == row.id))
    items = [*row.input_items, *(row.body.get("output") or [])]
    ids = {str(i["id"]) for i in items if isinstance(i.get("id"), str) and 0 < len(i["id"]) <= 64}
    session.add_all(
        ResponseItemRow(project_id=row.project_id, item_id=item_id, response_id=row.id)
        for item_id in sorted(ids)
    )
