"""The Containers service: containers and their files as the SDK sees them, and what the
code interpreter (``api.responses.code_interpreter``) needs of them: a container made for a
request (``create_auto``), checked and kept alive (``usable``), its files to run code over
(``snapshot``) and the files the code wrote (``save_outputs``).

A container expires ``expires_after.minutes`` (20 by default, as on the platform) after its
last activity: its files' operations and code runs are activity, retrieving it is not. An
expired container still shows (``status: "expired"``); using it is a 400
``container_expired``, and its files are discarded (``_sweep``, whenever a container is made).
File bytes live in the app's blob store, shared by replicas as the Files API's are.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from serverroom.api.containers.repository import ContainerRepository
from serverroom.api.containers.schemas import DEFAULT_MINUTES, MAX_FILE_IDS, ContainerCreate
from serverroom.api.files.service import FileService
from serverroom.api.lists import PageQuery, deleted_body, list_body
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError, UnsupportedParameterError
from serverroom.ids import new_id
from serverroom.storage.tables.containers import ContainerFileRow, ContainerRow
from serverroom.storage.tables.files import FileRow

MOUNT = "/mnt/data"  # where a container's files are, as on the platform
MAX_PATH = 1024
SWEEP_FILES = 200  # expired containers' files discarded each time a container is made


def expires_at(row: ContainerRow) -> int:
    return row.last_active_at + row.expires_minutes * 60


def container_object(row: ContainerRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "container",
        "created_at": row.created_at,
        "status": "expired" if expires_at(row) <= time.time() else "running",
        "expires_after": {"anchor": "last_active_at", "minutes": row.expires_minutes},
        "last_active_at": row.last_active_at,
        "name": row.name,
        "memory_limit": row.memory_limit,
        "network_policy": {"type": "disabled"},
    }


def file_object(row: ContainerFileRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "container.file",
        "created_at": row.created_at,
        "bytes": row.bytes,
        "container_id": row.container_id,
        "path": row.path,
        "source": row.source,
    }


def container_path(name: str) -> str:
    """``/mnt/data/<name>`` for a relative path (``data.csv``, ``sub/x.txt``); a 400 for one
    that would leave ``/mnt/data``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    path = "/".join([MOUNT, *parts])
    if not parts or ".." in parts or len(path) > MAX_PATH:
        raise InvalidRequestError(
            f"Invalid file path {name!r}.", param="file", code="invalid_value"
        )
    return path


def _named(filename: str | None) -> str:
    """The container path of a file uploaded or copied in: its name, in ``/mnt/data``."""
    return container_path(PurePosixPath(filename or "").name or "upload")


class Containers:
    """The operations behind the routes, for one app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = ContainerRepository(ctx.db)
        self.files = FileService(ctx)
        self.blobs = self.files.blobs

    # -- containers -----------------------------------------------------------------------

    async def create(self, project_id: str, body: ContainerCreate) -> dict[str, Any]:
        if body.skills:
            raise UnsupportedParameterError(
                "Container skills are not supported by this server.", param="skills"
            )
        minutes = body.expires_after.minutes if body.expires_after else DEFAULT_MINUTES
        return await self._create(
            project_id, body.name, minutes, body.memory_limit, body.file_ids or []
        )

    async def create_auto(self, project_id: str, file_ids: list[str]) -> dict[str, Any]:
        """A container for a ``code_interpreter`` tool's ``{"type": "auto", "file_ids"}``."""
        return await self._create(project_id, "auto", DEFAULT_MINUTES, "1g", file_ids)

    async def _create(
        self, project_id: str, name: str, minutes: int, memory_limit: str, file_ids: list[str]
    ) -> dict[str, Any]:
        if len(file_ids) > MAX_FILE_IDS:
            raise InvalidRequestError(
                f"At most {MAX_FILE_IDS} files can be copied into a container.",
                param="file_ids",
                code="invalid_value",
            )
        sources = [await self.files.get_row(project_id, f) for f in file_ids]  # 404 first
        await self._sweep()
        now = int(time.time())
        row = ContainerRow(
            id=new_id("cntr_", 24),
            project_id=project_id,
            name=name,
            created_at=now,
            last_active_at=now,
            expires_minutes=minutes,
            memory_limit=memory_limit,
        )
        await self.repo.insert(row)
        for source in sources:
            await self._copy(row, source)
        return container_object(row)

    async def _sweep(self) -> None:
        """Discard the files of expired containers (some of them: the next sweep goes on)."""
        for blob_id in await self.repo.discard_expired(int(time.time()), SWEEP_FILES):
            await self.blobs.remove(blob_id)

    async def retrieve(self, project_id: str, container_id: str) -> dict[str, Any]:
        return container_object(await self.repo.container(project_id, container_id))

    async def list_containers(
        self, project_id: str, page: PageQuery, name: str | None
    ) -> dict[str, Any]:
        rows, has_more = await self.repo.containers(project_id, page, name)
        return list_body([container_object(r) for r in rows], has_more)

    async def delete(self, project_id: str, container_id: str) -> dict[str, Any]:
        for blob_id in await self.repo.delete_container(project_id, container_id):
            await self.blobs.remove(blob_id)
        return deleted_body(container_id, "container.deleted")

    async def live(self, project_id: str, container_id: str) -> ContainerRow:
        """The container (404), which must not have expired (400); records activity."""
        row = await self.repo.container(project_id, container_id)
        now = int(time.time())
        if expires_at(row) <= now:
            raise InvalidRequestError(
                f"Container '{row.id}' is expired.", param="container_id", code="container_expired"
            )
        if await self.repo.touch(row.id, now):
            row.last_active_at = now
        return row

    async def usable(self, project_id: str, container_id: str) -> dict[str, Any]:
        """The container object: 404 if unknown, 400 if expired; marks it active."""
        return container_object(await self.live(project_id, container_id))

    # -- files ----------------------------------------------------------------------------

    async def upload(
        self, project_id: str, container_id: str, source: BinaryIO, filename: str | None
    ) -> dict[str, Any]:
        """A file uploaded into the container (at ``/mnt/data/<its name>``)."""
        row, path = await self.live(project_id, container_id), _named(filename)
        file_id = new_id("cfile_")
        size = await self.blobs.write_stream(source, file_id, self.files.max_bytes)
        if size is None:
            raise self.files.too_large()
        return await self._record(row, path, file_id, size, "user")

    async def copy(self, project_id: str, container_id: str, file_id: str) -> dict[str, Any]:
        """A Files API file of the project, copied into the container."""
        row = await self.live(project_id, container_id)
        return await self._copy(row, await self.files.get_row(project_id, file_id))

    async def _copy(self, row: ContainerRow, source: FileRow) -> dict[str, Any]:
        data = await self.files.content(source.project_id, source.id)
        return await self._write(row, _named(source.filename), data, "user")

    async def _write(
        self, row: ContainerRow, path: str, data: bytes, source: str
    ) -> dict[str, Any]:
        file_id = new_id("cfile_")
        await self.blobs.write_bytes(file_id, data)
        return await self._record(row, path, file_id, len(data), source)

    async def _record(
        self, container: ContainerRow, path: str, file_id: str, size: int, source: str
    ) -> dict[str, Any]:
        """The row of a file whose bytes are stored; it replaces the file at its path."""
        row = ContainerFileRow(
            id=file_id,
            project_id=container.project_id,
            container_id=container.id,
            path=path,
            bytes=size,
            source=source,
            created_at=int(time.time()),
            blob_id=file_id,
        )
        try:
            replaced = await self.repo.put_file(row)
        except BaseException:
            await self.blobs.remove(file_id)
            raise
        for blob_id in replaced:
            await self.blobs.remove(blob_id)
        return file_object(row)

    async def file(self, project_id: str, container_id: str, file_id: str) -> ContainerFileRow:
        await self.live(project_id, container_id)
        return await self.repo.file(project_id, container_id, file_id)

    async def list_files(
        self, project_id: str, container_id: str, page: PageQuery
    ) -> dict[str, Any]:
        await self.live(project_id, container_id)
        rows, has_more = await self.repo.files(project_id, container_id, page)
        return list_body([file_object(r) for r in rows], has_more)

    async def delete_file(self, project_id: str, container_id: str, file_id: str) -> dict[str, Any]:
        await self.live(project_id, container_id)
        await self.blobs.remove(await self.repo.delete_file(project_id, container_id, file_id))
        return deleted_body(file_id, "container.file.deleted")

    # -- the code interpreter -------------------------------------------------------------

    async def snapshot(self, project_id: str, container_id: str) -> dict[str, bytes]:
        """Every file of the container, by its path under ``/mnt/data`` (``sub/x.txt``)."""
        row = await self.live(project_id, container_id)
        out: dict[str, bytes] = {}
        for file in await self.repo.all_files(row.id):
            try:
                out[file.path.removeprefix(MOUNT + "/")] = await self.blobs.read_bytes(file.blob_id)
            except FileNotFoundError:  # deleted meanwhile
                continue
        return out

    async def save_outputs(
        self, project_id: str, container_id: str, files: dict[str, bytes]
    ) -> list[dict[str, Any]]:
        """Store files the code wrote or changed (path under ``/mnt/data`` -> bytes) as the
        container's ``assistant`` files, each replacing the file at its path."""
        row = await self.live(project_id, container_id)
        paths = {name: container_path(name) for name in files}  # all checked before any is kept
        return [await self._write(row, paths[n], data, "assistant") for n, data in files.items()]
