"""``GET /metrics``: the Prometheus text exposition (``observability.metrics``).

While authentication is enforced it takes an admin key (``Authorization: Bearer sk-admin-…``,
which Prometheus sends with ``authorization: {credentials: …}``); ``metrics.public = true``
opens it, for a scrape over a private network. ``metrics.enabled = false`` makes it a 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serverroom.api.routing import CheckedRoute
from serverroom.context import Ctx
from serverroom.errors import NotFoundError
from serverroom.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"], route_class=CheckedRoute)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, ctx: Ctx) -> Response:
    settings = ctx.settings.metrics
    if not settings.enabled:
        raise NotFoundError("Metrics are turned off on this server (metrics.enabled).")
    if not settings.public and ctx.accounts is not None:
        await ctx.accounts.auth.admin(request)
    await ctx.metrics.refresh(ctx)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
