"""Routes of webhook endpoints, ``/v1/webhook_endpoints`` (the SDK's ``client.webhooks``):
create (the signing secret shown once), list, retrieve, update, delete, rotate the secret, and
send a test event (the work is in ``service`` and ``delivery``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from serverroom.api.addresses import check_public_host
from serverroom.api.lists import NewestFirst
from serverroom.api.routing import CheckedRoute
from serverroom.api.schemas import RequestModel
from serverroom.api.webhooks.delivery import send
from serverroom.api.webhooks.service import (
    WebhookEndpoints,
    check_event_types,
    endpoint_object,
    event_payload,
)
from serverroom.context import Caller, Ctx
from serverroom.errors import InvalidRequestError

router = APIRouter(tags=["webhooks"], route_class=CheckedRoute)


class EndpointCreate(RequestModel):
    name: str = Field(min_length=1, max_length=256)
    url: str
    event_types: list[str]


class EndpointUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=256)
    url: str | None = None
    event_types: list[str] | None = None


class RotateSecret(RequestModel):
    keep_old_secret_active_for_24_hours: bool = False


class TestEvent(RequestModel):
    event_type: str


async def _check_url(ctx: Ctx, url: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise InvalidRequestError(
            "Invalid 'url': expected an http(s) URL.", param="url", code="invalid_url"
        )
    if not ctx.settings.webhooks.allow_private:
        await check_public_host(url, "url", "invalid_url")
    return url


@router.post("/webhook_endpoints")
async def create_endpoint(body: EndpointCreate, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    url = await _check_url(ctx, body.url)
    return await WebhookEndpoints(ctx).create(
        principal.project_id, body.name, url, body.event_types
    )


@router.get("/webhook_endpoints")
async def list_endpoints(ctx: Ctx, principal: Caller, page: NewestFirst) -> dict[str, Any]:
    return await WebhookEndpoints(ctx).list_endpoints(principal.project_id, page)


@router.get("/webhook_endpoints/{webhook_endpoint_id}")
async def retrieve_endpoint(
    webhook_endpoint_id: str, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    row = await WebhookEndpoints(ctx).get_row(principal.project_id, webhook_endpoint_id)
    return endpoint_object(row)


@router.post("/webhook_endpoints/{webhook_endpoint_id}")
async def update_endpoint(
    webhook_endpoint_id: str, body: EndpointUpdate, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    url = await _check_url(ctx, body.url) if body.url is not None else None
    return await WebhookEndpoints(ctx).update(
        principal.project_id,
        webhook_endpoint_id,
        name=body.name,
        url=url,
        event_types=body.event_types,
    )


@router.delete("/webhook_endpoints/{webhook_endpoint_id}")
async def delete_endpoint(webhook_endpoint_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await WebhookEndpoints(ctx).delete(principal.project_id, webhook_endpoint_id)


@router.post("/webhook_endpoints/{webhook_endpoint_id}/rotate_secret")
async def rotate_secret(
    webhook_endpoint_id: str, ctx: Ctx, principal: Caller, body: RotateSecret | None = None
) -> dict[str, Any]:
    keep = body.keep_old_secret_active_for_24_hours if body is not None else False
    return await WebhookEndpoints(ctx).rotate(principal.project_id, webhook_endpoint_id, keep)


@router.post("/webhook_endpoints/{webhook_endpoint_id}/test")
async def test_endpoint(
    webhook_endpoint_id: str, body: TestEvent, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    """Send one sample event now (not queued, not retried) and report what the endpoint said."""
    check_event_types([body.event_type], "event_type")
    row = await WebhookEndpoints(ctx).get_row(principal.project_id, webhook_endpoint_id)
    event_id, payload = event_payload(body.event_type, "test_" + body.event_type.split(".")[0])
    worker = ctx.webhook_worker
    if worker is None:
        raise InvalidRequestError("Webhook deliveries are not running on this server.")
    status, _ = await send(worker.client, row, event_id, payload)
    return {
        "object": "webhook_endpoint.test",
        "webhook_endpoint_id": row.id,
        "event_type": body.event_type,
        "success": True,
        "status_code": status if status is not None else 0,
    }
