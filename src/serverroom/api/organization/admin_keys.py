"""Admin API keys over HTTP (``/v1/organization/admin_api_keys``): list, create (the value shown
once), retrieve and delete (revoke), in the platform's shapes; each change is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from serverroom.accounts.repository import KeyInfo
from serverroom.accounts.service import Accounts
from serverroom.api.organization import service
from serverroom.api.organization.access import AdminCaller, AppAccounts
from serverroom.api.routing import CheckedRoute
from serverroom.errors import NotFoundError

router = APIRouter(route_class=CheckedRoute)


class AdminKeyCreate(BaseModel):
    name: str = Field("", max_length=256)


def admin_key_object(key: KeyInfo) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        "id": key.id,
        "name": key.name,
        "redacted_value": key.redacted_value,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "owner": {"type": "service_account", "object": "organization.service_account"},
    }


async def _admin_key(accounts: Accounts, key_id: str) -> KeyInfo:
    key = await accounts.repo.get_key(key_id)
    if not key.is_admin or key.revoked_at is not None:
        raise NotFoundError(f"No admin API key found with id '{key_id}'.", param="key_id")
    return key


@router.get("/admin_api_keys")
async def list_admin_keys(
    accounts: AppAccounts,
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> dict[str, Any]:
    keys = [k for k in await accounts.repo.list_keys() if k.is_admin and k.revoked_at is None]
    return service.list_page([admin_key_object(k) for k in keys], limit, after)


@router.post("/admin_api_keys")
async def create_admin_key(
    accounts: AppAccounts, admin: AdminCaller, body: AdminKeyCreate | None = None
) -> dict[str, Any]:
    created = await accounts.repo.create_key(None, name=body.name if body else "", admin=True)
    accounts.auth.key_created()
    await accounts.audit.record(
        "api_key.created",
        admin,
        project_id=None,
        resource_id=created.info.id,
        data={"name": created.info.name, "scopes": ["api.organization.admin"]},
    )
    return {**admin_key_object(created.info), "value": created.value}


@router.get("/admin_api_keys/{key_id}")
async def retrieve_admin_key(key_id: str, accounts: AppAccounts) -> dict[str, Any]:
    return admin_key_object(await _admin_key(accounts, key_id))


@router.delete("/admin_api_keys/{key_id}")
async def delete_admin_key(
    key_id: str, accounts: AppAccounts, admin: AdminCaller
) -> dict[str, Any]:
    await _admin_key(accounts, key_id)
    await accounts.revoke_key(key_id)
    await accounts.audit.record("api_key.deleted", admin, project_id=None, resource_id=key_id)
    return {"object": "organization.admin_api_key.deleted", "id": key_id, "deleted": True}
