"""Sending webhook deliveries: signed as the platform signs them, retried with backoff,
delivered at least once.

A delivery is a row until its endpoint answers 2xx. The worker (one per replica) claims due
rows for a while (``claim_until``), so replicas never send one at the same time and a replica
that dies mid-send leaves it to another once the claim runs out. A failed attempt (an error,
a timeout, any status but 2xx) is tried again after ``webhooks.backoff_seconds`` doubling per
attempt (at most an hour), up to ``webhooks.max_attempts``, then the row is ``failed``.

Signatures follow Standard Webhooks, as the platform's do: ``webhook-id`` (the event id),
``webhook-timestamp`` (seconds, at each attempt) and ``webhook-signature`` (``v1,`` and the
base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` with the endpoint's secret; during a
rotation's grace period, one signature per live secret).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import or_, select, update

from serverroom import __version__
from serverroom.storage.tables.webhooks import WebhookDeliveryRow, WebhookEndpointRow

if TYPE_CHECKING:
    from serverroom.context import AppContext

logger = logging.getLogger("serverroom.webhooks")
CLAIM_BATCH = 16
MAX_BACKOFF = 3600.0


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{event_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(endpoint: WebhookEndpointRow, event_id: str, body: str) -> dict[str, str]:
    now = int(time.time())
    secrets = [endpoint.secret]
    if endpoint.old_secret and (endpoint.old_secret_until or 0) > now:
        secrets.append(endpoint.old_secret)
    return {
        "content-type": "application/json",
        "user-agent": f"serverroom/{__version__} (webhooks)",
        "webhook-id": event_id,
        "webhook-timestamp": str(now),
        "webhook-signature": " ".join(signature(s, event_id, now, body) for s in secrets),
    }


async def send(
    client: httpx.AsyncClient, endpoint: WebhookEndpointRow, event_id: str, body: str
) -> tuple[int | None, str | None]:
    """One attempt: the status the endpoint answered (None if none) and what went wrong."""
    try:
        reply = await client.post(
            endpoint.url, content=body, headers=signed_headers(endpoint, event_id, body)
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if reply.is_success:
        return reply.status_code, None
    return reply.status_code, f"the endpoint answered {reply.status_code}"


class WebhookWorker:
    """Sends due deliveries, for this replica, until stopped."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.webhooks
        self._wake = asyncio.Event()
        self.client = httpx.AsyncClient(
            timeout=self.settings.timeout_seconds, follow_redirects=False, trust_env=False
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database was away, say: try again on the next round
                logger.exception("webhook delivery round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    async def deliver_due(self) -> int:
        """Claim and send the deliveries that are due; how many were tried."""
        claimed = await self._claim()
        await asyncio.gather(*(self._attempt(row, endpoint) for row, endpoint in claimed))
        return len(claimed)

    async def _claim(self) -> list[tuple[WebhookDeliveryRow, WebhookEndpointRow]]:
        now = int(time.time() * 1000)
        until = now + int(2 * self.settings.timeout_seconds * 1000) + 1000
        me = self.ctx.replica_id
        async with self.ctx.db.session() as session:
            due = list(
                await session.scalars(
                    select(WebhookDeliveryRow.seq)
                    .where(
                        WebhookDeliveryRow.state == "pending",
                        WebhookDeliveryRow.next_attempt_at <= now,
                        or_(
                            WebhookDeliveryRow.claim_until.is_(None),
                            WebhookDeliveryRow.claim_until < now,
                        ),
                    )
                    .order_by(WebhookDeliveryRow.seq)
                    .limit(CLAIM_BATCH)
                )
            )
            claimed: list[tuple[WebhookDeliveryRow, WebhookEndpointRow]] = []
            for seq in due:
                taken = await session.execute(
                    update(WebhookDeliveryRow)
                    .where(
                        WebhookDeliveryRow.seq == seq,
                        or_(
                            WebhookDeliveryRow.claim_until.is_(None),
                            WebhookDeliveryRow.claim_until < now,
                        ),
                    )
                    .values(claimed_by=me, claim_until=until)
                )
                if getattr(taken, "rowcount", 0) != 1:
                    continue  # another replica took it
                row = await session.get(WebhookDeliveryRow, seq)
                endpoint = await session.get(WebhookEndpointRow, row.endpoint_id) if row else None
                if row is not None and endpoint is not None:
                    claimed.append((row, endpoint))
        return claimed

    async def _attempt(self, row: WebhookDeliveryRow, endpoint: WebhookEndpointRow) -> None:
        status, error = await send(self.client, endpoint, row.event_id, row.payload)
        attempts = row.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status": status,
            "last_error": error,
            "claimed_by": None,
            "claim_until": None,
        }
        if error is None:
            values.update(state="delivered", delivered_at=int(time.time()))
        elif attempts >= self.settings.max_attempts:
            values["state"] = "failed"
            logger.warning(
                "webhook %s to %s failed after %d attempts: %s",
                row.event_id,
                endpoint.url,
                attempts,
                error,
            )
        else:
            wait = min(self.settings.backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF)
            values["next_attempt_at"] = int((time.time() + wait) * 1000)
        async with self.ctx.db.session() as session:
            await session.execute(
                update(WebhookDeliveryRow).where(WebhookDeliveryRow.seq == row.seq).values(**values)
            )

    async def close(self) -> None:
        await self.client.aclose()


@asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Run the delivery worker with the app."""
    worker = WebhookWorker(ctx)
    ctx.webhook_worker = worker
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        ctx.webhook_worker = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.close()
