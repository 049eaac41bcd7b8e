"""Storage of conversations and their items; every lookup is scoped by ``project_id``.

Shared by the Conversations API (its routes) and the Responses API (a response reads a
conversation's items as its context and appends its input and output to them).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select

from serverroom.errors import NotFoundError
from serverroom.ids import new_id
from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, owned_or
from serverroom.storage.tables.conversations import ConversationItemRow, ConversationRow

Item = dict[str, Any]


def conversation_not_found(conversation_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"Conversation with id '{conversation_id}' not found.", param=param)


class ConversationRepository(Repository):
    """Conversations of one database."""

    async def create(
        self, project_id: str, metadata: dict[str, str], items: list[Item]
    ) -> ConversationRow:
        now = int(time.time())
        row = ConversationRow(
            id=new_id("conv_"), project_id=project_id, created_at=now, metadata_=metadata
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()
            session.add_all(self._item_rows(row.id, project_id, items, now))
        return row

    async def get(self, project_id: str, conversation_id: str) -> ConversationRow:
        missing = conversation_not_found(conversation_id)
        return await self.found_owned(ConversationRow, conversation_id, project_id, missing)

    async def update_metadata(
        self, project_id: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRow:
        async with self.db.session() as session:
            missing = conversation_not_found(conversation_id)
            row = await owned_or(session, ConversationRow, conversation_id, project_id, missing)
            row.metadata_ = dict(metadata)
        return row

    async def delete(self, project_id: str, conversation_id: str) -> None:
        await self.get(project_id, conversation_id)
        async with self.db.session() as session:
            await session.execute(
                delete(ConversationItemRow).where(
                    ConversationItemRow.conversation_id == conversation_id
                )
            )
            await session.execute(
                delete(ConversationRow).where(ConversationRow.id == conversation_id)
            )

    @staticmethod
    def _item_rows(
        conversation_id: str, project_id: str, items: list[Item], now: int
    ) -> list[ConversationItemRow]:
        return [
            ConversationItemRow(
                id=item["id"],
                conversation_id=conversation_id,
                project_id=project_id,
                created_at=now,
                data=item,
            )
            for item in items
        ]

    async def add_items(self, project_id: str, conversation_id: str, items: list[Item]) -> None:
        """Append items (already normalised, with ids) to a conversation."""
        await self.get(project_id, conversation_id)
        async with self.db.session() as session:
            rows = self._item_rows(conversation_id, project_id, items, int(time.time()))
            session.add_all(rows)

    async def all_items(self, project_id: str, conversation_id: str) -> list[Item]:
        """Every item, oldest first (the context a response builds on)."""
        try:
            await self.get(project_id, conversation_id)
        except NotFoundError:
            raise conversation_not_found(conversation_id, "conversation") from None
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ConversationItemRow)
                .where(ConversationItemRow.conversation_id == conversation_id)
                .order_by(ConversationItemRow.seq)
            )
            return [row.data for row in rows]

    async def list_items(
        self, project_id: str, conversation_id: str, *, after: str | None, limit: int, order: str
    ) -> tuple[list[Item], bool]:
        """A page of items and whether more follow (an unknown ``after`` item is a 404)."""
        await self.get(project_id, conversation_id)
        in_conversation = ConversationItemRow.conversation_id == conversation_id
        async with self.db.session() as session:
            rows, has_more = await seq_page(
                session,
                ConversationItemRow,
                select(ConversationItemRow).where(in_conversation),
                project_id,
                after=after,
                limit=limit,
                order=order,
                within=(in_conversation,),
                unknown=NotFoundError(f"Item with id '{after}' not found.", param="after"),
            )
        return [row.data for row in rows], has_more

    async def _item_row(
        self, session: Any, conversation_id: str, item_id: str
    ) -> ConversationItemRow:
        row = await session.scalar(
            select(ConversationItemRow).where(
                ConversationItemRow.conversation_id == conversation_id,
                ConversationItemRow.id == item_id,
            )
        )
        if row is None:
            raise NotFoundError(f"Item with id '{item_id}' not found.")
        assert isinstance(row, ConversationItemRow)
        return row

    async def get_item(self, project_id: str, conversation_id: str, item_id: str) -> Item:
        await self.get(project_id, conversation_id)
        async with self.db.session() as session:
            return (await self._item_row(session, conversation_id, item_id)).data

    async def find_item(self, project_id: str, item_id: str) -> Item | None:
        """The newest item with this id in any of the project's conversations, if any."""
        query = (
            select(ConversationItemRow.data)
            .where(ConversationItemRow.project_id == project_id, ConversationItemRow.id == item_id)
            .order_by(ConversationItemRow.seq.desc())
            .limit(1)
        )
        async with self.db.session() as session:
            data = await session.scalar(query)
        return data if isinstance(data, dict) else None

    async def delete_item(self, project_id: str, conversation_id: str, item_id: str) -> None:
        await self.get(project_id, conversation_id)
        async with self.db.session() as session:
            row = await self._item_row(session, conversation_id, item_id)
            await session.delete(row)
