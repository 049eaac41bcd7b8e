"""The dashboard's playground: chat with a model through the Responses API, streamed.

The page's script posts a Responses request (``stream: true``, chained by
``previous_response_id``) to ``/dashboard/playground/responses?project=…``, which runs the
Responses API's own route for that project: the turn is admitted, limited, billed and stored
as any client's request would be. After each turn the page fetches ``/playground/turns/{id}``:
the turn's tokens and what they cost.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from serverroom.api.responses.router import create_response
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.context import Call, Ctx
from serverroom.dashboard.pages import project_names, stored_response
from serverroom.dashboard.rendering import PageRoute, page
from serverroom.dashboard.session import Admin
from serverroom.errors import InvalidRequestError
from serverroom.principal import DEFAULT_PROJECT, Principal

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/playground")
async def playground(request: Request, ctx: Ctx, admin: Admin) -> Response:
    models = [e.id for e in ctx.catalog.entries() if e.kind == "chat"]
    default = ctx.settings.default_model
    projects = await project_names(ctx) or {DEFAULT_PROJECT: "Default project"}
    if ctx.accounts is not None:
        active = {p.id for p in await ctx.accounts.repo.list_projects() if not p.archived_at}
        projects = {k: v for k, v in projects.items() if k in active}
    return page(
        request,
        "playground.html",
        admin,
        models=models,
        default_model=default if default in models else (models[0] if models else ""),
        projects=projects,
    )


@router.post("/playground/responses", response_model=None)
async def playground_turn(
    body: ResponseCreateRequest,
    request: Request,
    ctx: Ctx,
    admin: Admin,
    project: str = DEFAULT_PROJECT,
) -> Response:
    if ctx.accounts is not None:
        found = await ctx.accounts.repo.get_project(project)
        if found.archived_at is not None:
            raise InvalidRequestError(f"Project '{project}' is archived.", param="project")
    call = Call(ctx, Principal(project_id=project))
    return await create_response(body, request, call)


@router.get("/playground/turns/{response_id}")
async def turn(request: Request, response_id: str, ctx: Ctx, admin: Admin) -> Response:
    return await stored_response(request, ctx, admin, response_id, "_turn.html")
