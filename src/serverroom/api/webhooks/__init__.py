"""Webhooks: endpoints a project registers (``/v1/webhook_endpoints``), and the signed event
deliveries the server owes them when background responses and batches end."""

from __future__ import annotations

from serverroom.api.webhooks.delivery import lifespan
from serverroom.api.webhooks.router import router
from serverroom.api.webhooks.service import emit_event

__all__ = ["emit_event", "lifespan", "router"]
