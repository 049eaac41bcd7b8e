"""``GET /health``: 200 once the default model is loaded, 503 while it loads or if it failed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serverroom.api.routing import CheckedRoute
from serverroom.context import Ctx

router = APIRouter(tags=["health"], route_class=CheckedRoute)


@router.get("/health")
async def health(ctx: Ctx) -> JSONResponse:
    model = ctx.settings.default_model
    if ctx.engines.ready(model):
        body: dict[str, object] = {"status": "ok", "model": model}
        accounts = ctx.accounts
        if accounts is not None and accounts.limiter.degraded:
            body["degraded"] = ["redis: unreachable, rate limits count per replica"]
        if ctx.upstreams is not None and ctx.upstreams.all():
            body["upstreams"] = {k: u.pool.status() for k, u in ctx.upstreams.all().items()}
        return JSONResponse(body)
    failure = ctx.engines.failure(model)
    if failure is not None:
        body = {"status": "failed", "model": model, "error": failure}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "loading", "model": model}, status_code=503)
