"""Routes of the Responses API (thin: parse, call the service, render)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from openai.types.responses import Response as SDKResponse
from openai.types.responses.input_token_count_response import InputTokenCountResponse
from starlette.responses import JSONResponse, Response

from serverroom.api.disconnect import while_connected
from serverroom.api.image_data import load_images
from serverroom.api.images import check_images, takes_images
from serverroom.api.lists import NewestFirst, deleted_body, list_body, page_of
from serverroom.api.responses.background import cancel_response, forget, start_background
from serverroom.api.responses.objects import dump
from serverroom.api.responses.prompt import gather_state, render_prompt
from serverroom.api.responses.replay import EventLog, find_log, synthetic_events
from serverroom.api.responses.repository import ResponseRepository
from serverroom.api.responses.schemas import (
    InputTokensRequest,
    ResponseCompactRequest,
    ResponseCreateRequest,
)
from serverroom.api.responses.service import plan_response, start_generation
from serverroom.api.responses.stream import final_response, run_events, sse_body
from serverroom.api.responses.structured import response_tools
from serverroom.api.responses.summary import compact
from serverroom.api.routing import CheckedRoute
from serverroom.context import AppContext, CallDep, Caller, Ctx, request_id_of
from serverroom.errors import EngineError
from serverroom.sse import json_response, sse_event, sse_response

router = APIRouter(tags=["responses"], route_class=CheckedRoute)


@router.post("/responses", response_model=None)
async def create_response(body: ResponseCreateRequest, request: Request, call: CallDep) -> Response:
    plan = await plan_response(call, body)
    rid = request_id_of(request)
    headers = plan.ticket.headers
    if plan.background:
        queued = await start_background(plan, rid)
        if not body.stream:
            return JSONResponse(dump(queued), headers=headers)
        # Streamed background: follow the run's log; a disconnect leaves the run going.
        log = find_log(call.ctx, plan.response_id)
        assert log is not None  # opened by start_background
        return sse_response(follow_body(log, -1), headers=headers)
    events = run_events(plan, await start_generation(plan, rid))
    if body.stream:
        return sse_response(sse_body(events), headers=headers)
    response = await while_connected(request, final_response(events))
    if response.status == "failed" and response.error is not None:
        raise EngineError(response.error.message)
    return JSONResponse(dump(response), headers=headers)


@router.post("/responses/input_tokens", response_model=None)
async def count_input_tokens(
    body: InputTokensRequest,
    ctx: Ctx,
    principal: Caller,
) -> Response:
    entry = ctx.catalog.resolve(body.model)
    engine = await ctx.engines.get(entry)
    state = await gather_state(ctx, body, principal, require_input=False)
    items, tools = state.history + state.new, response_tools(body)
    check_images(entry, state.history, state.new)
    if takes_images(entry):  # a local vision model counts its images' tokens
        items = await load_images(ctx, principal.project_id, items)
    prompt = await asyncio.to_thread(render_prompt, engine, body.instructions, items, tools)
    count = InputTokenCountResponse(object="response.input_tokens", input_tokens=len(prompt))
    return json_response(count)


@router.post("/responses/compact", response_model=None)
async def compact_response(
    body: ResponseCompactRequest, request: Request, call: CallDep
) -> Response:
    state = await gather_state(call.ctx, body.context(), call.principal)
    items = state.history + state.new
    compacted = await compact(call, body.model, body.instructions, items, request_id_of(request))
    return JSONResponse(compacted)


@router.get("/responses/{response_id}", response_model=None)
async def get_response(
    response_id: str,
    ctx: Ctx,
    principal: Caller,
    stream: bool = False,
    starting_after: int = Query(-1, ge=-1),
) -> Response:
    row = await ResponseRepository(ctx.db).get(principal.project_id, response_id)
    if stream:
        return sse_response(replay_body(ctx, response_id, row.body, starting_after))
    return JSONResponse(dump(SDKResponse.model_validate(row.body)))


async def follow_body(log: EventLog, after: int) -> AsyncIterator[bytes]:
    """A run's logged events after ``after`` as SSE, live until the run ends."""
    async for event in log.follow(after):
        yield sse_event(event, event=event["type"])


async def replay_body(
    ctx: AppContext, response_id: str, body: dict[str, Any], after: int
) -> AsyncIterator[bytes]:
    """The response's events after ``after``: live from its run, or rebuilt from storage."""
    log = find_log(ctx, response_id)
    if log is not None:
        async for chunk in follow_body(log, after):
            yield chunk
        return
    for event in synthetic_events(body):
        if event["sequence_number"] > after:
            yield sse_event(event, event=event["type"])


@router.delete("/responses/{response_id}", response_model=None)
async def delete_response(response_id: str, ctx: Ctx, principal: Caller) -> Response:
    await ResponseRepository(ctx.db).delete(principal.project_id, response_id)
    forget(ctx, response_id)
    return JSONResponse(deleted_body(response_id, "response"))


@router.post("/responses/{response_id}/cancel", response_model=None)
async def cancel(response_id: str, ctx: Ctx, principal: Caller) -> Response:
    return JSONResponse(dump(await cancel_response(ctx, principal, response_id)))


@router.get("/responses/{response_id}/input_items", response_model=None)
async def list_input_items(
    response_id: str,
    ctx: Ctx,
    principal: Caller,
    page: NewestFirst,
) -> Response:
    row = await ResponseRepository(ctx.db).get(principal.project_id, response_id)
    data, has_more = page_of(list(row.input_items), page)
    return JSONResponse(list_body(data, has_more))
