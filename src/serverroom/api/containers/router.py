"""Routes of the Containers API: ``/v1/containers`` and their files (the work is in
``service``). A file is created from a multipart upload (``file``) or a JSON ``{file_id}``
naming a Files API file, as the SDK's ``containers.files.create`` sends either."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response, StreamingResponse

from serverroom.api.containers.schemas import ContainerCreate, FileCopy
from serverroom.api.containers.service import Containers, file_object
from serverroom.api.errors import validation_error
from serverroom.api.files.router import MULTIPART_SLACK
from serverroom.api.lists import NewestFirst
from serverroom.api.routing import CheckedRoute
from serverroom.context import Caller, Ctx
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.storage.tables.containers import ContainerFileRow

router = APIRouter(tags=["containers"], route_class=CheckedRoute)
BINARY = "application/octet-stream"


@router.post("/containers")
async def create_container(body: ContainerCreate, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await Containers(ctx).create(principal.project_id, body)


@router.get("/containers")
async def list_containers(
    ctx: Ctx, principal: Caller, page: NewestFirst, name: str | None = None
) -> dict[str, Any]:
    return await Containers(ctx).list_containers(principal.project_id, page, name)


@router.get("/containers/{container_id}")
async def get_container(container_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await Containers(ctx).retrieve(principal.project_id, container_id)


@router.delete("/containers/{container_id}")
async def delete_container(container_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return await Containers(ctx).delete(principal.project_id, container_id)


# -- files ----------------------------------------------------------------------------------


@router.post("/containers/{container_id}/files")
async def create_file(
    container_id: str, request: Request, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    service, project = Containers(ctx), principal.project_id
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await _copy_body(request)
        return await service.copy(project, container_id, body.file_id)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > service.files.max_bytes + MULTIPART_SLACK:
        raise service.files.too_large()
    async with request.form(max_files=1, max_fields=8) as form:
        upload, file_id = form.get("file"), form.get("file_id")
        if isinstance(upload, UploadFile):
            return await service.upload(project, container_id, upload.file, upload.filename)
        if isinstance(file_id, str):
            return await service.copy(project, container_id, file_id)
    raise InvalidRequestError(
        "Missing required parameter: 'file' (or 'file_id').",
        param="file",
        code="missing_required_parameter",
    )


async def _copy_body(request: Request) -> FileCopy:
    """The JSON body ``{"file_id"}``."""
    try:
        value = await request.json()
    except json.JSONDecodeError:
        raise InvalidRequestError(
            "The request must be multipart/form-data with 'file', or JSON with 'file_id'.",
            param="file",
        ) from None
    try:
        return FileCopy.model_validate(value if isinstance(value, dict) else {})
    except ValidationError as exc:
        raise validation_error(RequestValidationError(exc.errors())) from None


@router.get("/containers/{container_id}/files")
async def list_files(
    container_id: str, ctx: Ctx, principal: Caller, page: NewestFirst
) -> dict[str, Any]:
    return await Containers(ctx).list_files(principal.project_id, container_id, page)


@router.get("/containers/{container_id}/files/{file_id}")
async def get_file(container_id: str, file_id: str, ctx: Ctx, principal: Caller) -> dict[str, Any]:
    return file_object(await Containers(ctx).file(principal.project_id, container_id, file_id))


@router.delete("/containers/{container_id}/files/{file_id}")
async def delete_file(
    container_id: str, file_id: str, ctx: Ctx, principal: Caller
) -> dict[str, Any]:
    return await Containers(ctx).delete_file(principal.project_id, container_id, file_id)


@router.get("/containers/{container_id}/files/{file_id}/content", response_model=None)
async def file_content(container_id: str, file_id: str, ctx: Ctx, principal: Caller) -> Response:
    """The file's bytes: sent from disk, or streamed from the database blob store."""
    service = Containers(ctx)
    row = await service.file(principal.project_id, container_id, file_id)
    name = row.path.rsplit("/", 1)[-1]
    path = service.blobs.local_path(row.blob_id)
    if path is not None:
        return FileResponse(
            path, media_type=BINARY, filename=name, content_disposition_type="attachment"
        )
    return await _streamed(service, row, name)


async def _streamed(service: Containers, row: ContainerFileRow, name: str) -> Response:
    chunks = service.blobs.chunks(row.blob_id)
    try:
        first = await anext(chunks)
    except (FileNotFoundError, StopAsyncIteration):
        raise NotFoundError(
            f"No content found for file '{row.id}' in container '{row.container_id}'.",
            param="file_id",
        ) from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for piece in chunks:
            yield piece

    disposition = {"content-disposition": f'attachment; filename="{quote(name)}"'}
    return StreamingResponse(body(), media_type=BINARY, headers=disposition)
