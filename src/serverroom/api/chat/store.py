"""Stored Chat Completions: what ``store: true`` keeps, and the views of it.

A stored completion is the ``ChatCompletion`` the request returned plus its ``metadata``; its
messages are the request's messages, each with an id ``<completion id>-<index>`` (the
platform's ``ChatCompletionStoreMessage``). Completions are stored only when asked
(``store`` defaults to false for Chat), in the caller's project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionDeleted

from serverroom.api.chat.repository import ChatCompletionRepository
from serverroom.api.chat.schemas import ChatCompletionRequest, ChatMessageIn
from serverroom.api.lists import PageQuery, list_body, page_of
from serverroom.context import AppContext
from serverroom.principal import Principal
from serverroom.storage.tables.chat import ChatCompletionRow


def _message(message: ChatMessageIn, message_id: str) -> dict[str, Any]:
    parts = message.content if isinstance(message.content, list) else None
    out: dict[str, Any] = {
        "id": message_id,
        "role": message.role,
        "content": message.text() if message.content is not None else None,
        "content_parts": [part.model_dump(exclude_none=True) for part in parts] if parts else None,
    }
    if message.name is not None:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def stored_messages(request: ChatCompletionRequest, completion_id: str) -> list[dict[str, Any]]:
    return [
        _message(message, f"{completion_id}-{index}")
        for index, message in enumerate(request.messages)
    ]


class ChatStore:
    """Stored completions of the app's database, for one caller's project."""

    def __init__(self, ctx: AppContext, principal: Principal) -> None:
        self.repo = ChatCompletionRepository(ctx.db)
        self.project_id = principal.project_id

    async def keep(self, request: ChatCompletionRequest, completion: ChatCompletion) -> None:
        """Store ``completion`` if its request asked for it (``store: true``)."""
        if not request.store:
            return
        body = completion.model_dump(mode="json", exclude_unset=True)
        messages = stored_messages(request, completion.id)
        await self.repo.add(self.project_id, body, messages, dict(request.metadata or {}))

    async def retrieve(self, completion_id: str) -> dict[str, Any]:
        return _view(await self.repo.get(self.project_id, completion_id))

    async def update(self, completion_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        return _view(await self.repo.set_metadata(self.project_id, completion_id, metadata))

    async def delete(self, completion_id: str) -> ChatCompletionDeleted:
        await self.repo.delete(self.project_id, completion_id)
        return ChatCompletionDeleted(
            id=completion_id, object="chat.completion.deleted", deleted=True
        )

    async def page(
        self, *, model: str | None, metadata: dict[str, str], page: PageQuery
    ) -> dict[str, Any]:
        rows, has_more = await self.repo.page(
            self.project_id,
            model=model,
            metadata=metadata,
            after=page.after,
            limit=page.limit,
            order=page.order,
        )
        return list_body([_view(row) for row in rows], has_more)

    async def messages(self, completion_id: str, page: PageQuery) -> dict[str, Any]:
        row = await self.repo.get(self.project_id, completion_id)
        data, has_more = page_of(list(row.messages), page)
        return list_body(data, has_more)


def _view(row: ChatCompletionRow) -> dict[str, Any]:
    """The stored ``ChatCompletion`` with its current metadata."""
    return {**row.body, "metadata": row.metadata_}


def metadata_filters(query: Mapping[str, str]) -> dict[str, str]:
    """``metadata[key]=value`` query parameters (the SDK's form of the list filter)."""
    return {
        name[len("metadata[") : -1]: value
        for name, value in query.items()
        if name.startswith("metadata[") and name.endswith("]")
    }
