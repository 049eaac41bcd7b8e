"""Routes for legacy Completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from serverroom.api.common import primed_results
from serverroom.api.completions.schemas import CompletionRequest
from serverroom.api.completions.service import complete, plan_completion, stream_completion
from serverroom.api.disconnect import while_connected
from serverroom.api.routing import CheckedRoute
from serverroom.context import CallDep, request_id_of
from serverroom.sse import guard_stream, json_response, sse_response

router = APIRouter(tags=["completions"], route_class=CheckedRoute)


@router.post("/completions", response_model=None)
async def create_completion(body: CompletionRequest, request: Request, call: CallDep) -> Response:
    plan = await plan_completion(call, body)
    rid = request_id_of(request)
    if body.stream:
        events = await primed_results(plan.gen, rid)
        return sse_response(
            guard_stream(stream_completion(plan, events)), headers=plan.ticket.headers
        )
    completion = await while_connected(request, complete(plan, rid))
    return json_response(completion, headers=plan.ticket.headers)
