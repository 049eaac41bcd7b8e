"""Webhook endpoints (create, list, update, delete, rotate the secret) and the events they
get: ``emit_event`` queues one delivery per subscribed endpoint of the project, in the
database, so a delivery survives a restart and any replica's worker may send it.

Events are those the platform sends for what this server runs: ``response.completed``,
``.failed``, ``.cancelled``, ``.incomplete`` (background responses) and ``batch.completed``,
``.failed``, ``.cancelled``, ``.expired``. A payload is the platform's event object
(``{"id": "evt_…", "object": "event", "type", "created_at", "data": {"id"}}``); the SDK's
``client.webhooks.unwrap`` verifies and parses it.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from serverroom.api.lists import PageQuery, list_body, page_of
from serverroom.errors import InvalidRequestError, NotFoundError, check_choices
from serverroom.ids import new_id
from serverroom.storage.tables.webhooks import WebhookDeliveryRow, WebhookEndpointRow

if TYPE_CHECKING:
    from serverroom.context import AppContext

logger = logging.getLogger("serverroom.webhooks")

EVENT_TYPES = (
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
    "batch.expired",
)
OLD_SECRET_SECONDS = 24 * 3600


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def endpoint_object(row: WebhookEndpointRow, *, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": "webhook_endpoint",
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "event_types": list(row.event_types),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "signing_secret_hint": f"whsec_…{row.secret[-4:]}",
    }
    if with_secret:
        out["signing_secret"] = row.secret
    return out


def check_event_types(event_types: list[str], param: str = "event_types") -> list[str]:
    check_choices(event_types, EVENT_TYPES, param)
    if not event_types:
        raise InvalidRequestError(
            f"'{param}' must name at least one event type.", param=param, code="invalid_value"
        )
    return list(dict.fromkeys(event_types))


class WebhookEndpoints:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.db = ctx.db

    async def get_row(self, project_id: str, endpoint_id: str) -> WebhookEndpointRow:
        async with self.db.session() as session:
            row = await session.get(WebhookEndpointRow, endpoint_id)
        if row is None or row.project_id != project_id:
            raise NotFoundError(
                f"No webhook endpoint found with id '{endpoint_id}'.", param="webhook_endpoint_id"
            )
        return row

    async def create(
        self, project_id: str, name: str, url: str, event_types: list[str]
    ) -> dict[str, Any]:
        now = int(time.time())
        row = WebhookEndpointRow(
            id=new_id("whep_"),
            project_id=project_id,
            name=name,
            url=url,
            event_types=check_event_types(event_types),
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        async with self.db.session() as session:
            session.add(row)
        return endpoint_object(row, with_secret=True)

    async def list_endpoints(self, project_id: str, page: PageQuery) -> dict[str, Any]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(WebhookEndpointRow)
                .where(WebhookEndpointRow.project_id == project_id)
                .order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id)
            )
            items = [endpoint_object(row) for row in rows]
        data, more = page_of(items, page)
        return list_body(data, more)

    async def update(self, project_id: str, endpoint_id: str, **changes: Any) -> dict[str, Any]:
        row = await self.get_row(project_id, endpoint_id)
        values = {k: v for k, v in changes.items() if v is not None}
        if "event_types" in values:
            values["event_types"] = check_event_types(values["event_types"])
        async with self.db.session() as session:
            row = await session.get(WebhookEndpointRow, endpoint_id) or row
            changed = any(getattr(row, k) != v for k, v in values.items())
            for key, value in values.items():
                setattr(row, key, value)
            if changed:
                row.updated_at = int(time.time())
        return endpoint_object(row)

    async def rotate(self, project_id: str, endpoint_id: str, keep_old: bool) -> dict[str, Any]:
        await self.get_row(project_id, endpoint_id)
        async with self.db.session() as session:
            row = await session.get(WebhookEndpointRow, endpoint_id)
            assert row is not None
            now = int(time.time())
            row.old_secret = row.secret if keep_old else None
            row.old_secret_until = now + OLD_SECRET_SECONDS if keep_old else None
            row.secret = new_secret()
            row.updated_at = now
        return endpoint_object(row, with_secret=True)

    async def delete(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        await self.get_row(project_id, endpoint_id)
        async with self.db.session() as session:
            await session.execute(
                delete(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id)
            )
            await session.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                    WebhookDeliveryRow.state == "pending",
                )
            )
        return {"object": "webhook_endpoint.deleted", "id": endpoint_id, "deleted": True}


def event_payload(event_type: str, object_id: str) -> tuple[str, str]:
    """A new event's id and its JSON, exactly as it is signed and sent."""
    event_id = new_id("evt_")
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": int(time.time()),
        "data": {"id": object_id},
    }
    return event_id, json.dumps(body, separators=(",", ":"))


async def queue_delivery(ctx: AppContext, endpoint_id: str, event_type: str, object_id: str) -> str:
    event_id, payload = event_payload(event_type, object_id)
    async with ctx.db.session() as session:
        session.add(_delivery(endpoint_id, event_id, event_type, payload))
    if ctx.webhook_worker is not None:
        ctx.webhook_worker.wake()
    return event_id


def _delivery(endpoint_id: str, event_id: str, event_type: str, payload: str) -> WebhookDeliveryRow:
    return WebhookDeliveryRow(
        event_id=event_id,
        endpoint_id=endpoint_id,
        event_type=event_type,
        payload=payload,
        state="pending",
        attempts=0,
        next_attempt_at=int(time.time() * 1000),
    )


async def emit_event(ctx: AppContext, project_id: str, event_type: str, object_id: str) -> None:
    """Queue ``event_type`` about ``object_id`` for each of the project's endpoints that
    subscribed to it. Never raises: a failure to queue is logged, the caller's work stands."""
    try:
        async with ctx.db.session() as session:
            rows = await session.scalars(
                select(WebhookEndpointRow).where(WebhookEndpointRow.project_id == project_id)
            )
            endpoints = [row.id for row in rows if event_type in (row.event_types or [])]
            event_id, payload = event_payload(event_type, object_id)
            for endpoint_id in endpoints:
                session.add(_delivery(endpoint_id, event_id, event_type, payload))
    except Exception:  # a webhook must never fail the response or batch it reports
        logger.exception("could not queue %s for %s", event_type, object_id)
        return
    if endpoints and ctx.webhook_worker is not None:
        ctx.webhook_worker.wake()
