"""Files service: validation of uploads, the ``FileObject`` shape, and project scoping.

Other resources (the Batch API) use ``FileService`` to read input files and to store their
output files (purpose ``batch_output``).
"""

from __future__ import annotations

import time
from typing import Any, BinaryIO

from serverroom.api.files.blobs import BlobStore, DatabaseBlobs, DirectoryBlobs
from serverroom.api.files.repository import FileRepository
from serverroom.api.lists import deleted_body, list_body
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from serverroom.ids import new_id
from serverroom.storage.tables.files import FileRow

# The purposes the platform accepts for upload, and the SDK's FileObject can parse.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")
MIN_EXPIRY, MAX_EXPIRY = 3600, 30 * 24 * 3600


def file_object(row: FileRow) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": row.id,
        "object": "file",
        "bytes": row.bytes,
        "created_at": row.created_at,
        "filename": row.filename,
        "purpose": row.purpose,
        "status": row.status,
    }
    if row.expires_at is not None:  # the spec types these as integer and string: omit, not null
        obj["expires_at"] = row.expires_at
    if row.status_details is not None:
        obj["status_details"] = row.status_details
    return obj


def _not_found(file_id: str) -> NotFoundError:
    return NotFoundError(f"No such File object: {file_id}", param="id", code="file_not_found")


def check_expiry(anchor: str | None, seconds: str | int | None) -> int | None:
    """Validate ``expires_after``; the lifetime in seconds, or ``None``."""
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequestError(
            "expires_after[anchor] must be 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    try:
        value = int(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = -1
    if not MIN_EXPIRY <= value <= MAX_EXPIRY:
        raise InvalidRequestError(
            f"expires_after[seconds] must be an integer between {MIN_EXPIRY} and {MAX_EXPIRY}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return value


class FileService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = FileRepository(ctx.db)
        self.blobs: BlobStore = (
            DatabaseBlobs(ctx.db)
            if ctx.settings.files_store == "database"
            else DirectoryBlobs(ctx.settings.resolved_files_dir())
        )

    @property
    def max_bytes(self) -> int:
        return self.ctx.settings.max_file_bytes

    def too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"File is too large: the limit is {self.max_bytes} bytes.",
            param="file",
            code="file_too_large",
        )

    async def upload(
        self,
        project_id: str,
        source: BinaryIO,
        filename: str,
        purpose: str,
        expires_seconds: int | None,
    ) -> dict[str, Any]:
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequestError(
                f"Invalid value for 'purpose': '{purpose}'. Expected one of "
                + ", ".join(repr(p) for p in UPLOAD_PURPOSES)
                + ".",
                param="purpose",
                code="invalid_value",
            )
        file_id = new_id("file-", 12)
        size = await self.blobs.write_stream(source, file_id, self.max_bytes)
        if size is None:
            raise self.too_large()
        return await self._record(project_id, file_id, filename, purpose, size, expires_seconds)

    async def store_bytes(
        self,
        project_id: str,
        data: bytes,
        filename: str,
        purpose: str,
        expires_seconds: int | None = None,
    ) -> dict[str, Any]:
        """Store bytes the server made (e.g. a batch's output file)."""
        file_id = new_id("file-", 12)
        await self.blobs.write_bytes(file_id, data)
        return await self._record(
            project_id, file_id, filename, purpose, len(data), expires_seconds
        )

    async def _record(
        self,
        project_id: str,
        file_id: str,
        filename: str,
        purpose: str,
        size: int,
        expires_seconds: int | None,
    ) -> dict[str, Any]:
        now = int(time.time())
        row = FileRow(
            id=file_id,
            project_id=project_id,
            filename=filename or "upload",
            purpose=purpose,
            bytes=size,
            created_at=now,
            expires_at=now + expires_seconds if expires_seconds else None,
            status="processed",
            status_details=None,
        )
        try:
            await self.repo.insert(row)
        except BaseException:
            await self.blobs.remove(file_id)
            raise
        return file_object(row)

    async def get_row(self, project_id: str, file_id: str) -> FileRow:
        row = await self.repo.get(project_id, file_id)
        if row is None:
            raise _not_found(file_id)
        return row

    async def filenames(self, file_ids: list[str]) -> dict[str, str]:
        """The names of files by id (those that exist)."""
        return await self.repo.filenames(file_ids)

    async def retrieve(self, project_id: str, file_id: str) -> dict[str, Any]:
        return file_object(await self.get_row(project_id, file_id))

    async def content(self, project_id: str, file_id: str) -> bytes:
        await self.get_row(project_id, file_id)
        try:
            return await self.blobs.read_bytes(file_id)
        except FileNotFoundError:
            raise _not_found(file_id) from None

    async def list(
        self, project_id: str, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        rows, has_more = await self.repo.page(
            project_id, purpose=purpose, after=after, limit=limit, order=order
        )
        return list_body([file_object(r) for r in rows], has_more, null_ids=False)

    async def delete(self, project_id: str, file_id: str) -> dict[str, Any]:
        if not await self.repo.delete(project_id, file_id):
            raise _not_found(file_id)
        await self.blobs.remove(file_id)
        return deleted_body(file_id, "file")

    async def purge_expired(self) -> int:
        """Delete files whose ``expires_at`` has passed (rows and bytes)."""
        ids = await self.repo.expired(int(time.time()))
        await self.repo.delete_ids(ids)
        for file_id in ids:
            await self.blobs.remove(file_id)
        return len(ids)
