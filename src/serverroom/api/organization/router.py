"""Routes of the admin API (``/v1/organization/...``); every one requires an admin key.

Projects: list/create/retrieve. Project API keys: list/create (the only time the key's value is
returned)/retrieve/delete (= revoke). Usage tier: retrieve/pin. Usage and costs: bucketed pages
from the ledger, one route per ``BUCKET_ROUTES`` entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from serverroom.accounts.quota import MonthSpend
from serverroom.accounts.repository import ProjectInfo
from serverroom.accounts.service import Accounts
from serverroom.api.lists import deleted_body, list_body
from serverroom.api.organization import admin_keys, service
from serverroom.api.organization.access import AdminCaller, AppAccounts, require_admin
from serverroom.api.routing import CheckedRoute
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.principal import DEFAULT_PROJECT

router = APIRouter(
    prefix="/organization",
    tags=["organization"],
    route_class=CheckedRoute,
    dependencies=[Depends(require_admin)],  # every route: admin keys only
)


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=256)


class KeyCreate(BaseModel):
    name: str = Field("", max_length=256)


class TierPin(BaseModel):
    tier: str | None = None


def _many(request: Request, name: str) -> list[str]:
    return [*request.query_params.getlist(f"{name}[]"), *request.query_params.getlist(name)]


@router.get("/projects")
async def list_projects(
    accounts: AppAccounts,
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
    include_archived: bool = False,
) -> dict[str, Any]:
    projects = await accounts.repo.list_projects()
    items = [service.project_object(p) for p in projects if include_archived or not p.archived_at]
    return service.list_page(items, limit, after)


@router.post("/projects")
async def create_project(
    body: ProjectCreate, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    project = await accounts.repo.create_project(body.name)
    data = {"name": body.name}
    await accounts.audit.record(
        "project.created", admin, project_id=project.id, resource_id=project.id, data=data
    )
    return service.project_object(project)


@router.get("/projects/{project_id}")
async def retrieve_project(project_id: str, accounts: AppAccounts) -> dict[str, Any]:
    project = await accounts.project(project_id)
    return service.project_object(project, (await accounts.tier_of(project.id)).name)


@router.post("/projects/{project_id}/archive")
async def archive_project(
    project_id: str, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    project = await accounts.project(project_id)
    if project.id == DEFAULT_PROJECT:
        raise InvalidRequestError("The default project cannot be archived.", param="project_id")
    archived = await accounts.archive(project)
    if project.archived_at is None:
        await accounts.audit.record(
            "project.archived", admin, project_id=project.id, resource_id=project.id
        )
    return service.project_object(archived)


@router.get("/projects/{project_id}/tier")
async def retrieve_tier(project_id: str, accounts: AppAccounts) -> dict[str, Any]:
    project = await accounts.project(project_id)
    tier = await accounts.tier_of(project.id)
    return _tier_body(project, tier.name, pinned=project.pinned_tier is not None)


def _tier_body(project: ProjectInfo, tier: str, *, pinned: bool) -> dict[str, Any]:
    return {
        "object": "organization.project.tier",
        "project_id": project.id,
        "tier": tier,
        "pinned": pinned,
        "spend_usd": project.spend_usd,
    }


@router.post("/projects/{project_id}/tier")
async def pin_tier(
    project_id: str, body: TierPin, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    project = await accounts.project(project_id)
    tier = await accounts.pin_tier(project, body.tier)
    await accounts.audit.record(
        "project.updated",
        admin,
        project_id=project.id,
        resource_id=project.id,
        data={"tier": body.tier},
    )
    return _tier_body(project, tier.name, pinned=body.tier is not None)


class SpendLimit(BaseModel):
    monthly_usd: float | None = Field(None, ge=0)  # null: no limit


def _spend_body(project_id: str, spend: MonthSpend) -> dict[str, Any]:
    return {
        "object": "organization.project.spend_limit",
        "project_id": project_id,
        "monthly_usd": spend.limit_usd,
        "spent_this_month_usd": round(spend.spent_usd, 6),
        "month_start": spend.month,
    }


@router.get("/projects/{project_id}/spend_limit")
async def retrieve_spend_limit(project_id: str, accounts: AppAccounts) -> dict[str, Any]:
    project = await accounts.project(project_id)
    return _spend_body(project.id, await accounts.month_spend(project.id))


@router.post("/projects/{project_id}/spend_limit")
async def set_spend_limit(
    project_id: str, body: SpendLimit, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    project = await accounts.project(project_id)
    spend = await accounts.set_spend_limit(project, body.monthly_usd)
    await accounts.audit.record(
        "project.updated",
        admin,
        project_id=project.id,
        resource_id=project.id,
        data={"monthly_spend_limit_usd": body.monthly_usd},
    )
    return _spend_body(project.id, spend)


@router.get("/projects/{project_id}/api_keys")
async def list_keys(
    project_id: str,
    accounts: AppAccounts,
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> dict[str, Any]:
    await accounts.repo.get_project(project_id)
    keys = await accounts.repo.list_keys(project_id)
    return service.list_page([service.key_object(k) for k in keys], limit, after)


@router.post("/projects/{project_id}/api_keys")
async def create_key(
    project_id: str,
    accounts: AppAccounts,
    admin: AdminCaller,
    body: KeyCreate | None = None,
) -> dict[str, Any]:
    if (await accounts.repo.get_project(project_id)).archived_at is not None:
        raise InvalidRequestError(
            f"Project '{project_id}' is archived: it takes no new API keys.", param="project_id"
        )
    created = await accounts.repo.create_key(project_id, name=body.name if body else "")
    accounts.auth.key_created()
    await accounts.audit.record(
        "api_key.created",
        admin,
        project_id=project_id,
        resource_id=created.info.id,
        data={"name": created.info.name, "scopes": ["api.all"]},
    )
    return service.created_key_object(created)


async def _key_in(accounts: Accounts, project_id: str, key_id: str) -> None:
    key = await accounts.repo.get_key(key_id)
    if key.project_id != project_id:
        raise NotFoundError(f"No API key found with id '{key_id}' in project '{project_id}'.")


@router.get("/projects/{project_id}/api_keys/{key_id}")
async def retrieve_key(project_id: str, key_id: str, accounts: AppAccounts) -> dict[str, Any]:
    await _key_in(accounts, project_id, key_id)
    return service.key_object(await accounts.repo.get_key(key_id))


@router.delete("/projects/{project_id}/api_keys/{key_id}")
async def delete_key(
    project_id: str, key_id: str, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    await _key_in(accounts, project_id, key_id)
    await accounts.revoke_key(key_id)
    await accounts.audit.record("api_key.deleted", admin, project_id=project_id, resource_id=key_id)
    return deleted_body(key_id, "organization.project.api_key.deleted")


@router.get("/audit_logs")
async def list_audit_logs(
    request: Request,
    accounts: AppAccounts,
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> dict[str, Any]:
    """The audit log, newest first; filters as the platform's (``event_types[]``,
    ``project_ids[]``, ``resource_ids[]``, ``effective_at[gt|gte|lt|lte]``)."""
    ranges = {}
    for op in ("gt", "gte", "lt", "lte"):
        value = request.query_params.get(f"effective_at[{op}]")
        if value is not None:
            ranges[op] = _integer(value, f"effective_at[{op}]")
    entries, more = await accounts.audit.page(
        limit=limit,
        after=after,
        event_types=_many(request, "event_types"),
        project_ids=_many(request, "project_ids"),
        resource_ids=_many(request, "resource_ids"),
        effective_at=ranges,
    )
    return list_body(entries, more)


def _integer(value: str, param: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid '{param}': expected an integer (unix seconds).", param=param
        ) from None


# Bucketed pages: the route's path → the kind of page (``service.bucket_page``).
BUCKET_ROUTES = {"/usage/completions": "completions", "/costs": "costs"}


def _bucket_route(kind: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The route of one kind of bucketed page (the same parameters for every kind)."""

    async def route(
        request: Request,
        start_time: int,
        accounts: AppAccounts,
        end_time: int | None = None,
        bucket_width: str = "1d",
        limit: int | None = None,
        page: str | None = None,
    ) -> dict[str, Any]:
        return await service.bucket_page(
            accounts.ledger,
            kind=kind,
            start_time=start_time,
            end_time=end_time,
            bucket_width=bucket_width,
            group_by=_many(request, "group_by"),
            limit=limit,
            page=page,
            project_ids=_many(request, "project_ids"),
            models=_many(request, "models"),
            api_key_ids=_many(request, "api_key_ids"),
        )

    return route


for _path, _kind in BUCKET_ROUTES.items():  # named usage_completions, costs (operation ids)
    router.add_api_route(
        _path, _bucket_route(_kind), methods=["GET"], name=_path.strip("/").replace("/", "_")
    )

router.include_router(admin_keys.router)
