"""The dashboard's pages: sign-in, usage, stored responses and conversations, batches, files.

Every page but the sign-in takes an admin session (``Admin``); lists span every project and
can be narrowed to one (``?project=``) and searched (``?q=``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from serverroom.accounts.ledger import request_cost
from serverroom.catalog import CatalogError
from serverroom.context import AppContext, Ctx
from serverroom.dashboard import session as sessions
from serverroom.dashboard.queries import DashboardQueries
from serverroom.dashboard.rendering import PageRoute, page
from serverroom.dashboard.session import Admin
from serverroom.dashboard.usage import GROUPS, usage_view
from serverroom.errors import NotFoundError
from serverroom.metering import Usage

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def project_names(ctx: AppContext) -> dict[str, str]:
    if ctx.accounts is None:
        return {}
    return {p.id: p.name for p in await ctx.accounts.repo.list_projects()}


@router.get("/login")
async def login_page(request: Request, ctx: Ctx) -> Response:
    open_auth = ctx.accounts is None or not await ctx.accounts.auth.enforced()
    return page(request, "login.html", None, open_auth=open_auth, failed=False)


@router.post("/login")
async def login(request: Request, ctx: Ctx, key: Annotated[str, Form()] = "") -> Response:
    cookie = await sessions.sign_in(ctx, key)
    if cookie is None:
        return page(request, "login.html", None, status=401, open_auth=False, failed=True)
    response = RedirectResponse("/dashboard/usage", status_code=303)
    sessions.set_cookie(response, ctx, cookie)
    return response


@router.post("/logout")
async def logout() -> Response:  # takes no token: signing someone out harms nothing
    response = RedirectResponse(sessions.LOGIN_PATH, status_code=303)
    sessions.clear_cookie(response)
    return response


@router.get("")
@router.get("/")
async def home(admin: Admin) -> Response:
    return RedirectResponse("/dashboard/usage", status_code=303)


@router.get("/usage")
async def usage(
    request: Request,
    ctx: Ctx,
    admin: Admin,
    days: int = Query(14, ge=1, le=90),
    group: str = Query("project", pattern="^(project|model)$"),
) -> Response:
    if ctx.accounts is None:
        raise NotFoundError("Accounts are not enabled on this server: there is no usage.")
    names = await project_names(ctx) if group == "project" else {}
    view = await usage_view(ctx.accounts.ledger, days=days, group=group, names=names)
    return page(request, "usage.html", admin, view=view, groups=list(GROUPS))


async def listing(
    request: Request,
    ctx: AppContext,
    admin: Admin,
    kind: str,
    rows: list[Any],
    q: str,
    project: str,
) -> Response:
    """A searchable list page (``<kind>.html``), or only its rows for htmx's live search."""
    name = f"_{kind}_rows.html" if request.headers.get("hx-request") else f"{kind}.html"
    projects = await project_names(ctx)
    return page(request, name, admin, rows=rows, q=q, project=project, projects=projects)


@router.get("/responses")
async def responses(
    request: Request, ctx: Ctx, admin: Admin, q: str = "", project: str = ""
) -> Response:
    rows = await DashboardQueries(ctx.db).responses(q.strip(), project)
    return await listing(request, ctx, admin, "responses", rows, q, project)


def response_cost(ctx: AppContext, model: str, usage: dict[str, Any] | None) -> float | None:
    """What a stored response's tokens cost at its model's prices (None: no usage, or the
    model is no longer in the catalog)."""
    if not usage:
        return None
    try:
        entry = ctx.catalog.resolve(model)
    except (CatalogError, NotFoundError):
        return None
    details = usage.get("input_tokens_details") or {}
    used = Usage(
        int(usage.get("input_tokens", 0)),
        int(details.get("cached_tokens", 0)),
        int(usage.get("output_tokens", 0)),
    )
    return request_cost(entry, used)


async def stored_response(
    request: Request, ctx: AppContext, admin: Admin, response_id: str, template: str
) -> Response:
    """``template`` showing a stored response (any project's) with its usage and cost."""
    row = await DashboardQueries(ctx.db).response(response_id)
    if row is None:
        raise NotFoundError(f"No response found with id '{response_id}'.")
    usage = row.body.get("usage")
    cost = response_cost(ctx, row.model, usage)
    return page(request, template, admin, row=row, usage=usage, cost=cost)


@router.get("/responses/{response_id}")
async def response_detail(request: Request, response_id: str, ctx: Ctx, admin: Admin) -> Response:
    return await stored_response(request, ctx, admin, response_id, "response.html")


@router.get("/conversations")
async def conversations(
    request: Request, ctx: Ctx, admin: Admin, q: str = "", project: str = ""
) -> Response:
    rows = await DashboardQueries(ctx.db).conversations(q.strip(), project)
    return await listing(request, ctx, admin, "conversations", rows, q, project)


@router.get("/conversations/{conversation_id}")
async def conversation_detail(
    request: Request, conversation_id: str, ctx: Ctx, admin: Admin
) -> Response:
    queries = DashboardQueries(ctx.db)
    row = await queries.conversation(conversation_id)
    if row is None:
        raise NotFoundError(f"No conversation found with id '{conversation_id}'.")
    items = await queries.conversation_items(conversation_id)
    return page(request, "conversation.html", admin, row=row, items=items)


@router.get("/batches")
async def batches(request: Request, ctx: Ctx, admin: Admin, project: str = "") -> Response:
    queries = DashboardQueries(ctx.db)
    rows = await queries.batches(project)
    files = await queries.files(project)
    return page(
        request,
        "batches.html",
        admin,
        batches=rows,
        files=files,
        project=project,
        projects=await project_names(ctx),
    )
