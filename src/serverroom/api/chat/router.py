"""Routes for Chat Completions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from serverroom.api.chat.schemas import ChatCompletionRequest
from serverroom.api.chat.service import complete_chat, merge_choices, plan_chat, stream_chat
from serverroom.api.disconnect import while_connected
from serverroom.api.routing import CheckedRoute
from serverroom.context import AppContext, get_context, get_principal, request_id_of
from serverroom.principal import Principal
from serverroom.sse import guard_stream, json_response, primed, sse_response

router = APIRouter(tags=["chat"], route_class=CheckedRoute)


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    ctx: AppContext = Depends(get_context),
    principal: Principal = Depends(get_principal),
) -> Response:
    plan = await plan_chat(ctx, body, principal)
    rid = request_id_of(request)
    if body.stream:
        started = asyncio.Event()  # headers go out once the engine has admitted the request
        events = await primed(merge_choices(plan, rid, started.set), started)
        return sse_response(guard_stream(stream_chat(plan, events)), headers=plan.ticket.headers)
    completion = await while_connected(request, complete_chat(plan, rid))
    return json_response(completion, headers=plan.ticket.headers)
