"""Routes for the Batch API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from serverroom.api.batches.schemas import BatchCreateRequest
from serverroom.api.batches.service import BatchService
from serverroom.api.routing import CheckedRoute
from serverroom.context import Caller, Ctx

router = APIRouter(tags=["batches"], route_class=CheckedRoute)


@router.post("/batches")
async def create_batch(body: BatchCreateRequest, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await BatchService(ctx).create(principal, body)


@router.get("/batches")
async def list_batches(
    ctx: Ctx,
    principal: Caller,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    return await BatchService(ctx).list(principal, after=after, limit=limit)


@router.get("/batches/{batch_id}")
async def retrieve_batch(batch_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await BatchService(ctx).retrieve(principal, batch_id)


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await BatchService(ctx).cancel(principal, batch_id)
