"""Routes of the Conversations API: conversations and their items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from openai.types.conversations import Conversation
from starlette.responses import JSONResponse, Response

from serverroom.api.conversations.schemas import (
    ConversationCreateRequest,
    ConversationUpdateRequest,
    ItemsCreateRequest,
)
from serverroom.api.items import normalize_input
from serverroom.api.lists import NewestFirst, deleted_body, list_body
from serverroom.api.routing import CheckedRoute
from serverroom.context import AppContext, Caller, Ctx
from serverroom.sse import json_response
from serverroom.storage.conversations import ConversationRepository
from serverroom.storage.tables.conversations import ConversationRow

router = APIRouter(tags=["conversations"], route_class=CheckedRoute)


def conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id, object="conversation", created_at=row.created_at, metadata=row.metadata_
    )


def _items(data: list[dict[str, Any]], has_more: bool) -> JSONResponse:
    # Items were normalised to SDK shapes when stored; re-validating each against the SDK's
    # 30-member union on every read would cost ~0.25 ms an item for nothing.
    return JSONResponse(list_body(data, has_more))


def _repo(ctx: AppContext) -> ConversationRepository:
    return ConversationRepository(ctx.db)


@router.post("/conversations", response_model=None)
async def create_conversation(
    body: ConversationCreateRequest,
    ctx: Ctx,
    principal: Caller,
) -> Response:
    items = normalize_input(body.items, param="items")
    row = await _repo(ctx).create(principal.project_id, body.metadata or {}, items)
    return json_response(conversation(row))


@router.get("/conversations/{conversation_id}", response_model=None)
async def get_conversation(conversation_id: str, ctx: Ctx, principal: Caller) -> Response:
    return json_response(conversation(await _repo(ctx).get(principal.project_id, conversation_id)))


@router.post("/conversations/{conversation_id}", response_model=None)
async def update_conversation(
    conversation_id: str,
    body: ConversationUpdateRequest,
    ctx: Ctx,
    principal: Caller,
) -> Response:
    row = await _repo(ctx).update_metadata(principal.project_id, conversation_id, body.metadata)
    return json_response(conversation(row))


@router.delete("/conversations/{conversation_id}", response_model=None)
async def delete_conversation(conversation_id: str, ctx: Ctx, principal: Caller) -> Response:
    await _repo(ctx).delete(principal.project_id, conversation_id)
    return JSONResponse(deleted_body(conversation_id, "conversation.deleted"))


@router.post("/conversations/{conversation_id}/items", response_model=None)
async def create_items(
    conversation_id: str,
    body: ItemsCreateRequest,
    ctx: Ctx,
    principal: Caller,
) -> Response:
    items = normalize_input(body.items, param="items")
    await _repo(ctx).add_items(principal.project_id, conversation_id, items)
    return _items(items, False)


@router.get("/conversations/{conversation_id}/items", response_model=None)
async def list_items(
    conversation_id: str,
    ctx: Ctx,
    principal: Caller,
    page: NewestFirst,
) -> Response:
    data, has_more = await _repo(ctx).list_items(
        principal.project_id, conversation_id, after=page.after, limit=page.limit, order=page.order
    )
    return _items(data, has_more)


@router.get("/conversations/{conversation_id}/items/{item_id}", response_model=None)
async def get_item(conversation_id: str, item_id: str, ctx: Ctx, principal: Caller) -> Response:
    item = await _repo(ctx).get_item(principal.project_id, conversation_id, item_id)
    return JSONResponse(item)


@router.delete("/conversations/{conversation_id}/items/{item_id}", response_model=None)
async def delete_item(
    conversation_id: str,
    item_id: str,
    ctx: Ctx,
    principal: Caller,
) -> Response:
    repo = _repo(ctx)
    await repo.delete_item(principal.project_id, conversation_id, item_id)
    return json_response(conversation(await repo.get(principal.project_id, conversation_id)))
