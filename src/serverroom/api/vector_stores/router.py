"""Routes of the Vector Stores API: ``/v1/vector_stores`` with its files, file batches and
search (the work is in ``service``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import JSONResponse

from serverroom.api.lists import NewestFirst, PageQuery, deleted_body, list_body
from serverroom.api.routing import CheckedRoute
from serverroom.api.vector_stores.schemas import (
    BatchCreate,
    FileCreate,
    FileUpdate,
    SearchRequest,
    StoreCreate,
    StoreUpdate,
)
from serverroom.api.vector_stores.service import (
    POLL_AFTER_MS,
    VectorStores,
    file_object,
    store_object,
)
from serverroom.context import Caller, Ctx

router = APIRouter(tags=["vector_stores"], route_class=CheckedRoute)
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


@dataclass(frozen=True)
class Listing:
    """A list request: its cursor, ``before`` (the previous page's), a file ``filter``."""

    page: PageQuery
    before: str | None = None
    status: str | None = None


async def _listing(page: NewestFirst, before: str | None = None) -> Listing:
    return Listing(page, before)


async def _file_listing(
    page: NewestFirst, before: str | None = None, filter: FileStatus | None = Query(None)
) -> Listing:
    return Listing(page, before, filter)


StoreListing = Annotated[Listing, Depends(_listing)]
FileListing = Annotated[Listing, Depends(_file_listing)]


def _polled(body: dict[str, Any]) -> JSONResponse:
    """An object the SDK's ``*_and_poll`` helpers poll, with the interval they should wait."""
    return JSONResponse(body, headers={"openai-poll-after-ms": POLL_AFTER_MS})


async def _file_page(
    service: VectorStores, store_id: str, listing: Listing, batch_id: str | None = None
) -> dict[str, Any]:
    page = listing.page
    rows, has_more = await service.repo.files(
        store_id,
        after=page.after,
        limit=page.limit,
        order=page.order,
        status=listing.status,
        batch_id=batch_id,
        before=listing.before,
    )
    return list_body([file_object(r) for r in rows], has_more)


@router.post("/vector_stores")
async def create_store(body: StoreCreate, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await VectorStores(ctx).create(principal.project_id, body)


@router.get("/vector_stores")
async def list_stores(ctx: Ctx, principal: Caller, listing: StoreListing) -> dict[str, Any]:
    service, page = VectorStores(ctx), listing.page
    rows, has_more = await service.repo.stores(
        principal.project_id,
        after=page.after,
        limit=page.limit,
        order=page.order,
        before=listing.before,
    )
    counts = await service.repo.counts([r.id for r in rows])
    return list_body([store_object(r, counts[r.id]) for r in rows], has_more)


@router.get("/vector_stores/{vector_store_id}")
async def get_store(vector_store_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    service = VectorStores(ctx)
    return await service.describe(await service.repo.store(principal.project_id, vector_store_id))


@router.post("/vector_stores/{vector_store_id}")
async def update_store(
    vector_store_id: str, body: StoreUpdate, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    service = VectorStores(ctx)
    values: dict[str, Any] = {}
    if "name" in body.model_fields_set and body.name is not None:
        values["name"] = body.name
    if "metadata" in body.model_fields_set:
        values["metadata_"] = dict(body.metadata or {})
    if "expires_after" in body.model_fields_set:
        values["expires_after"] = body.expires_after.model_dump() if body.expires_after else None
    row = await service.repo.update_store(principal.project_id, vector_store_id, **values)
    return await service.describe(row)


@router.delete("/vector_stores/{vector_store_id}")
async def delete_store(vector_store_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    await VectorStores(ctx).repo.delete_store(principal.project_id, vector_store_id)
    ctx.vector_indexes.pop(vector_store_id, None)
    return deleted_body(vector_store_id, "vector_store.deleted")


@router.post("/vector_stores/{vector_store_id}/search")
async def search(
    vector_store_id: str, body: SearchRequest, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    return await VectorStores(ctx).search(principal.project_id, vector_store_id, body)


# -- files ----------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/files", response_model=None)
async def attach_file(
    vector_store_id: str, body: FileCreate, ctx: Ctx, principal: Caller
) -> JSONResponse:
    service = VectorStores(ctx)
    attached = await service.attach_file(
        principal.project_id, vector_store_id, body.file_id, body.attributes, body.chunking_strategy
    )
    return _polled(attached)


@router.get("/vector_stores/{vector_store_id}/files")
async def list_files(
    vector_store_id: str, ctx: Ctx, principal: Caller, listing: FileListing
) -> dict[str, Any]:
    service = VectorStores(ctx)
    await service.repo.store(principal.project_id, vector_store_id)
    return await _file_page(service, vector_store_id, listing)


@router.get("/vector_stores/{vector_store_id}/files/{file_id}", response_model=None)
async def get_file(vector_store_id: str, file_id: str, ctx: Ctx, principal: Caller) -> JSONResponse:
    row = await VectorStores(ctx).repo.file(principal.project_id, vector_store_id, file_id)
    return _polled(file_object(row))


@router.post("/vector_stores/{vector_store_id}/files/{file_id}")
async def update_file(
    vector_store_id: str, file_id: str, body: FileUpdate, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    repo = VectorStores(ctx).repo
    row = await repo.set_attributes(principal.project_id, vector_store_id, file_id, body.attributes)
    return file_object(row)


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}")
async def detach_file(
    vector_store_id: str, file_id: str, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    await VectorStores(ctx).repo.detach(principal.project_id, vector_store_id, file_id)
    return deleted_body(file_id, "vector_store.file.deleted")


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def file_content(
    vector_store_id: str, file_id: str, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    parts = await VectorStores(ctx).content(principal.project_id, vector_store_id, file_id)
    return {
        "object": "vector_store.file_content.page",
        "data": parts,
        "has_more": False,
        "next_page": None,
    }


# -- file batches ---------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/file_batches", response_model=None)
async def create_batch(
    vector_store_id: str, body: BatchCreate, ctx: Ctx, principal: Caller
) -> JSONResponse:
    return _polled(
        await VectorStores(ctx).create_batch(principal.project_id, vector_store_id, body)
    )


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}", response_model=None)
async def get_batch(
    vector_store_id: str, batch_id: str, ctx: Ctx, principal: Caller
) -> JSONResponse:
    return _polled(await VectorStores(ctx).batch(principal.project_id, vector_store_id, batch_id))


@router.post("/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_batch(
    vector_store_id: str, batch_id: str, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    return await VectorStores(ctx).cancel_batch(principal.project_id, vector_store_id, batch_id)


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}/files")
async def batch_files(
    vector_store_id: str, batch_id: str, ctx: Ctx, principal: Caller, listing: FileListing
) -> dict[str, Any]:
    service = VectorStores(ctx)
    await service.repo.batch(principal.project_id, vector_store_id, batch_id)
    return await _file_page(service, vector_store_id, listing, batch_id)
