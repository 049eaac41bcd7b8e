"""Routes for Chat Completions: create, and the stored completions (``store: true``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from serverroom.api.chat.schemas import ChatCompletionRequest, ChatCompletionUpdateRequest
from serverroom.api.chat.service import complete_chat, plan_chat
from serverroom.api.chat.store import ChatStore, metadata_filters
from serverroom.api.chat.stream import stream_chat
from serverroom.api.common import primed_results
from serverroom.api.disconnect import while_connected
from serverroom.api.lists import OldestFirst
from serverroom.api.routing import CheckedRoute
from serverroom.context import CallDep, Caller, Ctx, request_id_of
from serverroom.sse import guard_stream, json_response, sse_response

router = APIRouter(tags=["chat"], route_class=CheckedRoute)


async def get_store(ctx: Ctx, principal: Caller) -> ChatStore:
    return ChatStore(ctx, principal)


Store = Annotated[ChatStore, Depends(get_store)]  # the caller's stored completions


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, call: CallDep, store: Store
) -> Response:
    plan = await plan_chat(call, body)
    rid = request_id_of(request)
    if body.stream:
        events = await primed_results(plan.gen, rid)
        chunks = stream_chat(plan, events, lambda done: store.keep(body, done))
        return sse_response(guard_stream(chunks), headers=plan.ticket.headers)
    completion = await while_connected(request, complete_chat(plan, rid))
    await store.keep(body, completion)
    return json_response(completion, headers=plan.ticket.headers)


@router.get("/chat/completions", response_model=None)
async def list_chat_completions(
    request: Request, page: OldestFirst, store: Store, model: str | None = None
) -> Response:
    filters = metadata_filters(request.query_params)
    found = await store.page(model=model, metadata=filters, page=page)
    return JSONResponse(found)


@router.get("/chat/completions/{completion_id}", response_model=None)
async def get_chat_completion(completion_id: str, store: Store) -> Response:
    return JSONResponse(await store.retrieve(completion_id))


@router.post("/chat/completions/{completion_id}", response_model=None)
async def update_chat_completion(
    completion_id: str,
    body: ChatCompletionUpdateRequest,
    store: Store,
) -> Response:
    return JSONResponse(await store.update(completion_id, dict(body.metadata or {})))


@router.delete("/chat/completions/{completion_id}", response_model=None)
async def delete_chat_completion(completion_id: str, store: Store) -> Response:
    return json_response(await store.delete(completion_id))


@router.get("/chat/completions/{completion_id}/messages", response_model=None)
async def list_chat_messages(completion_id: str, page: OldestFirst, store: Store) -> Response:
    return JSONResponse(await store.messages(completion_id, page))
