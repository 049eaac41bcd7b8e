"""Storage of responses: the only code that reads or writes the ``responses`` table.

Every lookup filters by ``project_id``, so another project's response is simply not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from serverroom.api.responses.items import Item
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.storage.db import Database
from serverroom.storage.tables.responses import ResponseRow

ACTIVE = ("queued", "in_progress")
RESTART_ERROR = {
    "code": "server_error",
    "message": "The server restarted before the response completed.",
}


def not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param=param)


class ResponseRepository:
    """Responses of one database, scoped by project on every call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, project_id: str, body: dict[str, Any], input_items: list[Item]) -> None:
        """Insert or replace a response (its body is the SDK ``Response`` as JSON)."""
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

    async def get(self, project_id: str, response_id: str) -> ResponseRow:
        """The stored response, or ``NotFoundError``."""
        async with self.db.session() as session:
            row = await session.get(ResponseRow, response_id)
        if row is None or row.project_id != project_id:
            raise not_found(response_id)
        return row

    async def delete(self, project_id: str, response_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(ResponseRow).where(
                    ResponseRow.id == response_id, ResponseRow.project_id == project_id
                )
            )
        if getattr(result, "rowcount", 0) == 0:
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
        return bool(getattr(result, "rowcount", 0))

    async def chain_items(self, project_id: str, previous_id: str) -> list[Item]:
        """Inputs and outputs of ``previous_id`` and every response before it, oldest first."""
        turns: list[list[Item]] = []
        current: str | None = previous_id
        seen: set[str] = set()
        while current and current not in seen:
            seen.add(current)
            try:
                row = await self.get(project_id, current)
            except NotFoundError:
                if current == previous_id:
                    raise not_found(previous_id, "previous_response_id") from None
                break
            if current == previous_id and row.status in ACTIVE:
                raise InvalidRequestError(
                    f"Previous response with id '{previous_id}' is still {row.status}.",
                    param="previous_response_id",
                )
            turns.append(list(row.input_items) + list(row.body.get("output") or []))
            current = row.previous_response_id
        return [item for turn in reversed(turns) for item in turn]

    async def fail_interrupted(self) -> int:
        """Mark every queued / in-progress response failed (run once at start-up)."""
        async with self.db.session() as session:
            rows = (
                await session.scalars(select(ResponseRow).where(ResponseRow.status.in_(ACTIVE)))
            ).all()
            for row in rows:
                body = dict(row.body)
                body.update(status="failed", error=dict(RESTART_ERROR))
                row.status = "failed"
                row.body = body
        return len(rows)
