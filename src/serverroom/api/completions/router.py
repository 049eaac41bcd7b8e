"""Routes for legacy Completions."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from serverroom.api.completions.schemas import CompletionRequest
from serverroom.api.completions.service import (
    complete,
    job_events,
    plan_completion,
    stream_completion,
)
from serverroom.api.disconnect import while_connected
from serverroom.api.routing import CheckedRoute
from serverroom.context import AppContext, get_context, get_principal, request_id_of
from serverroom.principal import Principal
from serverroom.sse import guard_stream, json_response, primed, sse_response

router = APIRouter(tags=["completions"], route_class=CheckedRoute)


@router.post("/completions", response_model=None)
async def create_completion(
    body: CompletionRequest,
    request: Request,
    ctx: AppContext = Depends(get_context),
    principal: Principal = Depends(get_principal),
) -> Response:
    plan = await plan_completion(ctx, body, principal)
    rid = request_id_of(request)
    if body.stream:
        events = await primed(job_events(plan, rid))
        return sse_response(
            guard_stream(stream_completion(plan, events)), headers=plan.ticket.headers
        )
    completion = await while_connected(request, complete(plan, rid))
    return json_response(completion, headers=plan.ticket.headers)
