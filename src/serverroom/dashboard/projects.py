"""The dashboard's projects and keys: list and create projects; per project its keys (create,
with the secret shown once; revoke), tier and rate limits, monthly spend limit, archiving.

Each change runs the admin API's own route function (``api.organization.router``) as the
signed-in admin, so the dashboard and the API validate, act and write audit entries alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from serverroom.accounts.service import Accounts
from serverroom.api.organization.access import AppAccounts
from serverroom.api.organization.router import (
    KeyCreate,
    ProjectCreate,
    SpendLimit,
    TierPin,
    archive_project,
    create_key,
    create_project,
    delete_key,
    pin_tier,
    set_spend_limit,
)
from serverroom.dashboard.rendering import PageRoute, page
from serverroom.dashboard.session import Admin
from serverroom.errors import InvalidRequestError

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/projects")
async def projects(request: Request, accounts: AppAccounts, admin: Admin) -> Response:
    await accounts.ledger.settled()
    rows = []
    for project in await accounts.repo.list_projects():
        tier = await accounts.tier_of(project.id)
        spend = await accounts.month_spend(project.id)
        rows.append((project, tier.name, spend))
    return page(request, "projects.html", admin, rows=rows)


@router.post("/projects")
async def new_project(
    request: Request, accounts: AppAccounts, admin: Admin, name: Annotated[str, Form()] = ""
) -> Response:
    body = ProjectCreate(name=name.strip() or "Untitled project")
    created = await create_project(body, accounts, admin.principal)
    return Response(
        status_code=204, headers={"HX-Redirect": f"/dashboard/projects/{created['id']}"}
    )


async def _project_page(
    request: Request, accounts: Accounts, admin: Admin, project_id: str
) -> Response:
    project = await accounts.project(project_id)
    tier = await accounts.tier_of(project.id)
    spend = await accounts.month_spend(project.id)
    keys = sorted(await accounts.repo.list_keys(project.id), key=lambda k: -k.created_at)
    limits = sorted(tier.models.items())
    return page(
        request,
        "project.html",
        admin,
        project=project,
        tier=tier,
        tiers=accounts.ladder.names(),
        limits=limits,
        spend=spend,
        keys=keys,
    )


async def _keys(
    request: Request, accounts: Accounts, admin: Admin, project_id: str, secret: str | None
) -> Response:
    """The project's key table (with a new key's ``secret``, the only time it is shown)."""
    keys = sorted(await accounts.repo.list_keys(project_id), key=lambda k: -k.created_at)
    return page(request, "_keys.html", admin, project_id=project_id, keys=keys, secret=secret)


@router.get("/projects/{project_id}")
async def project(
    request: Request, project_id: str, accounts: AppAccounts, admin: Admin
) -> Response:
    return await _project_page(request, accounts, admin, project_id)


@router.post("/projects/{project_id}/keys")
async def new_key(
    request: Request,
    project_id: str,
    accounts: AppAccounts,
    admin: Admin,
    name: Annotated[str, Form()] = "",
) -> Response:
    created = await create_key(project_id, accounts, admin.principal, KeyCreate(name=name))
    return await _keys(request, accounts, admin, project_id, secret=created["value"])


@router.post("/projects/{project_id}/keys/{key_id}/revoke")
async def revoke(
    request: Request, project_id: str, key_id: str, accounts: AppAccounts, admin: Admin
) -> Response:
    await delete_key(project_id, key_id, accounts, admin.principal)
    return await _keys(request, accounts, admin, project_id, secret=None)


@router.post("/projects/{project_id}/tier")
async def save_tier(
    request: Request,
    project_id: str,
    accounts: AppAccounts,
    admin: Admin,
    tier: Annotated[str, Form()] = "",
) -> Response:
    await pin_tier(project_id, TierPin(tier=tier or None), accounts, admin.principal)
    return await _project_page(request, accounts, admin, project_id)


@router.post("/projects/{project_id}/spend_limit")
async def save_spend_limit(
    request: Request,
    project_id: str,
    accounts: AppAccounts,
    admin: Admin,
    monthly_usd: Annotated[str, Form()] = "",
) -> Response:
    text = monthly_usd.strip()
    try:
        limit = float(text) if text else None
    except ValueError:
        raise InvalidRequestError(
            f"Invalid spend limit '{text}': a number of dollars, or empty for none.",
            param="monthly_usd",
        ) from None
    body = SpendLimit(monthly_usd=limit)
    await set_spend_limit(project_id, body, accounts, admin.principal)
    return await _project_page(request, accounts, admin, project_id)


@router.post("/projects/{project_id}/archive")
async def archive(
    request: Request, project_id: str, accounts: AppAccounts, admin: Admin
) -> Response:
    await archive_project(project_id, accounts, admin.principal)
    return await _project_page(request, accounts, admin, project_id)
