"""Routes for Files (multipart upload parsed by hand to apply the size limit early)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.responses import FileResponse, Response, StreamingResponse

from serverroom.api.files.service import FileService, check_expiry
from serverroom.api.routing import CheckedRoute
from serverroom.context import Caller, Ctx
from serverroom.errors import InvalidRequestError, NotFoundError

router = APIRouter(tags=["files"], route_class=CheckedRoute)
MULTIPART_SLACK = 64 * 1024  # boundaries and the other form fields
FieldT = TypeVar("FieldT", UploadFile, str)


@router.post("/files", response_model=None)
async def upload_file(request: Request, ctx: Ctx, principal: Caller) -> JSONResponse:
    service = FileService(ctx)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > service.max_bytes + MULTIPART_SLACK:
        raise service.too_large()
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError(
            "The request must be multipart/form-data with 'file' and 'purpose'.", param="file"
        )
    async with request.form(max_files=1, max_fields=16) as form:
        upload = _required(form, "file", UploadFile)
        purpose = _required(form, "purpose", str)
        anchor, seconds = _expires_after(form)
        expires = check_expiry(anchor, seconds)
        obj = await service.upload(
            principal.project_id, upload.file, upload.filename or "upload", purpose, expires
        )
    return JSONResponse(obj)


@router.get("/files")
async def list_files(
    ctx: Ctx,
    principal: Caller,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    return await FileService(ctx).list(
        principal.project_id, purpose=purpose, after=after, limit=limit, order=order
    )


@router.get("/files/{file_id}")
async def retrieve_file(file_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await FileService(ctx).retrieve(principal.project_id, file_id)


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await FileService(ctx).delete(principal.project_id, file_id)


@router.get("/files/{file_id}/content", response_model=None)
async def file_content(file_id: str, ctx: Ctx, principal: Caller) -> Response:
    service = FileService(ctx)
    row = await service.get_row(principal.project_id, file_id)
    missing = NotFoundError(f"No such File object: {file_id}", param="id", code="file_not_found")
    disposition = {"content-disposition": f'attachment; filename="{quote(row.filename)}"'}
    path = service.blobs.local_path(row.id)
    if path is not None:
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=row.filename,
            content_disposition_type="attachment",
        )
    chunks = service.blobs.chunks(row.id)
    try:
        first = await anext(chunks)
    except (FileNotFoundError, StopAsyncIteration):
        raise missing from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for piece in chunks:
            yield piece

    return StreamingResponse(body(), media_type="application/octet-stream", headers=disposition)


def _required(form: FormData, name: str, kind: type[FieldT]) -> FieldT:
    """The form field ``name``, which must be a ``kind`` (a file, or a plain string)."""
    value = form.get(name)
    if not isinstance(value, kind):
        raise InvalidRequestError(
            f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
        )
    return value


def _expires_after(form: FormData) -> tuple[str | None, str | None]:
    """``expires_after`` as bracketed form fields (what the SDK sends) or one JSON field."""
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    whole = form.get("expires_after")
    if isinstance(whole, str):
        try:
            parsed = json.loads(whole)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequestError(
                "Invalid value for 'expires_after': expected an object with 'anchor' and"
                " 'seconds'.",
                param="expires_after",
                code="invalid_value",
            )
        anchor, seconds = parsed.get("anchor"), parsed.get("seconds")
        seconds = str(seconds) if isinstance(seconds, int) else seconds
    return (
        anchor if isinstance(anchor, str) else None,
        seconds if isinstance(seconds, str) else None,
    )
