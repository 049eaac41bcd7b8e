"""Storage of stored Chat Completions: the only code that reads or writes their tables.

Every lookup filters by ``project_id``, so another project's completion is simply not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, select

from serverroom.errors import NotFoundError
from serverroom.storage.paging import seq_page
from serverroom.storage.repository import Repository, changed, owned_or
from serverroom.storage.tables.chat import ChatCompletionMetadataRow, ChatCompletionRow


def not_found(completion_id: str) -> NotFoundError:
    return NotFoundError(
        f"Chat completion with id '{completion_id}' not found.", param="completion_id"
    )


def _pairs(completion_id: str, metadata: dict[str, str]) -> list[ChatCompletionMetadataRow]:
    return [
        ChatCompletionMetadataRow(completion_id=completion_id, key=key, value=value)
        for key, value in metadata.items()
    ]


class ChatCompletionRepository(Repository):
    """Stored completions of one database, scoped by project on every call."""

    async def add(
        self,
        project_id: str,
        body: dict[str, Any],
        messages: list[dict[str, Any]],
        metadata: dict[str, str],
    ) -> None:
        """Store a completion (its body is the SDK ``ChatCompletion`` as JSON)."""
        row = ChatCompletionRow(
            id=body["id"],
            project_id=project_id,
            created_at=int(body["created"]),
            model=str(body["model"]),
            metadata_=metadata,
            body=body,
            messages=messages,
        )
        async with self.db.session() as session:
            session.add(row)
            session.add_all(_pairs(row.id, metadata))

    async def get(self, project_id: str, completion_id: str) -> ChatCompletionRow:
        """The stored completion, or ``NotFoundError``."""
        missing = not_found(completion_id)
        return await self.found_owned(ChatCompletionRow, completion_id, project_id, missing)

    async def page(
        self,
        project_id: str,
        *,
        model: str | None,
        metadata: dict[str, str],
        after: str | None,
        limit: int,
        order: str,
    ) -> tuple[list[ChatCompletionRow], bool]:
        """A page of the project's completions, filtered by model and metadata pairs."""
        query = select(ChatCompletionRow).where(ChatCompletionRow.project_id == project_id)
        if model:
            query = query.where(ChatCompletionRow.model == model)
        for key, value in metadata.items():
            pair = ChatCompletionMetadataRow
            query = query.where(
                exists().where(
                    pair.completion_id == ChatCompletionRow.id,
                    pair.key == key,
                    pair.value == value,
                )
            )
        async with self.db.session() as session:
            return await seq_page(
                session, ChatCompletionRow, query, project_id, after=after, limit=limit, order=order
            )

    async def set_metadata(
        self, project_id: str, completion_id: str, metadata: dict[str, str]
    ) -> ChatCompletionRow:
        """Replace the completion's metadata; the updated row."""
        async with self.db.session() as session:
            missing = not_found(completion_id)
            row = await owned_or(session, ChatCompletionRow, completion_id, project_id, missing)
            row.metadata_ = metadata
            await session.execute(
                delete(ChatCompletionMetadataRow).where(
                    ChatCompletionMetadataRow.completion_id == completion_id
                )
            )
            session.add_all(_pairs(completion_id, metadata))
        return row

    async def delete(self, project_id: str, completion_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(ChatCompletionRow).where(
                    ChatCompletionRow.id == completion_id,
                    ChatCompletionRow.project_id == project_id,
                )
            )
            if not changed(result):
                raise not_found(completion_id)
            await session.execute(
                delete(ChatCompletionMetadataRow).where(
                    ChatCompletionMetadataRow.completion_id == completion_id
                )
            )
