"""What the dashboard reads across projects: stored responses, conversations, batches, files.

The resources' own repositories answer one project's requests; an admin looks at every project
at once, newest first, narrowed by a project and a search text (matched against ids, models
and the stored JSON, case-insensitively).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Text, cast, exists, or_, select

from serverroom.storage.repository import Repository
from serverroom.storage.tables.batches import BatchRow
from serverroom.storage.tables.conversations import ConversationItemRow, ConversationRow
from serverroom.storage.tables.files import FileRow
from serverroom.storage.tables.responses import ResponseRow

PAGE = 50  # rows a list shows


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DashboardQueries(Repository):
    """Read-only lists for the dashboard's pages."""

    async def _rows(self, query: Select[Any]) -> list[Any]:
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def responses(self, search: str = "", project_id: str = "") -> list[ResponseRow]:
        query = select(ResponseRow).order_by(ResponseRow.created_at.desc(), ResponseRow.id)
        if project_id:
            query = query.where(ResponseRow.project_id == project_id)
        if search:
            pattern = _like(search)
            query = query.where(
                or_(
                    ResponseRow.id.ilike(pattern, escape="\\"),
                    ResponseRow.model.ilike(pattern, escape="\\"),
                    cast(ResponseRow.body, Text).ilike(pattern, escape="\\"),
                    cast(ResponseRow.input_items, Text).ilike(pattern, escape="\\"),
                )
            )
        return await self._rows(query.limit(PAGE))

    async def response(self, response_id: str) -> ResponseRow | None:
        async with self.db.session() as session:
            return await session.get(ResponseRow, response_id)

    async def conversations(self, search: str = "", project_id: str = "") -> list[ConversationRow]:
        query = select(ConversationRow).order_by(
            ConversationRow.created_at.desc(), ConversationRow.id
        )
        if project_id:
            query = query.where(ConversationRow.project_id == project_id)
        if search:
            pattern = _like(search)
            in_items = exists().where(
                ConversationItemRow.conversation_id == ConversationRow.id,
                cast(ConversationItemRow.data, Text).ilike(pattern, escape="\\"),
            )
            query = query.where(
                or_(
                    ConversationRow.id.ilike(pattern, escape="\\"),
                    cast(ConversationRow.metadata_, Text).ilike(pattern, escape="\\"),
                    in_items,
                )
            )
        return await self._rows(query.limit(PAGE))

    async def conversation(self, conversation_id: str) -> ConversationRow | None:
        async with self.db.session() as session:
            return await session.get(ConversationRow, conversation_id)

    async def conversation_items(self, conversation_id: str) -> list[dict[str, Any]]:
        query = (
            select(ConversationItemRow.data)
            .where(ConversationItemRow.conversation_id == conversation_id)
            .order_by(ConversationItemRow.seq)
        )
        return [dict(data) for data in await self._rows(query)]

    async def batches(self, project_id: str = "") -> list[BatchRow]:
        query = select(BatchRow).order_by(BatchRow.seq.desc())
        if project_id:
            query = query.where(BatchRow.project_id == project_id)
        return await self._rows(query.limit(PAGE))

    async def files(self, project_id: str = "") -> list[FileRow]:
        query = select(FileRow).order_by(FileRow.seq.desc())
        if project_id:
            query = query.where(FileRow.project_id == project_id)
        return await self._rows(query.limit(PAGE))
