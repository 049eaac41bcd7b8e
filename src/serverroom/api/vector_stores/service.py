"""The Vector Stores service: stores, attached files and file batches as the SDK sees them,
and search over a store's chunks (``search.Index``, cached per store until its chunks change).

Every object belongs to the project that made it; another project's ids are simply not found.
Attaching a file only records it (``in_progress``); the ingestion worker (``ingest``) does
the work, so ``create`` returns at once and the SDK's ``*_and_poll`` helpers poll.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from serverroom.api.files.service import FileService
from serverroom.api.vector_stores.chunking import chunking_strategy
from serverroom.api.vector_stores.embedder import embedder
from serverroom.api.vector_stores.repository import VectorStoreRepository
from serverroom.api.vector_stores.schemas import BatchCreate, SearchRequest, StoreCreate
from serverroom.api.vector_stores.search import Index, Mode, check_filter, matches
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id
from serverroom.storage.tables.vector_stores import (
    VectorStoreFileBatchRow,
    VectorStoreFileRow,
    VectorStoreRow,
)

DAY = 86_400
Spec = tuple[str, dict[str, Any] | None, dict[str, Any]]  # file id, attributes, chunking
INDEXES_KEPT = 32  # stores whose search index stays in memory
POLL_AFTER_MS = "250"  # the openai-poll-after-ms the SDK's poll helpers wait between polls


def _file_counts(counts: dict[str, int]) -> dict[str, int]:
    states = ("in_progress", "completed", "failed", "cancelled")
    return {**{s: counts.get(s, 0) for s in states}, "total": sum(counts.get(s, 0) for s in states)}


def expires_at(row: VectorStoreRow) -> int | None:
    """When the store expires: ``days`` after it was last active (None: never)."""
    if not row.expires_after:
        return None
    return row.last_active_at + int(row.expires_after["days"]) * DAY


def usable(row: VectorStoreRow) -> VectorStoreRow:
    """The store, unless it expired (400: it can no longer be searched)."""
    ends = expires_at(row)
    if ends is not None and ends <= time.time():
        raise InvalidRequestError(
            f"Vector store '{row.id}' has expired and can no longer be searched.",
            param="vector_store_id",
            code="vector_store_expired",
        )
    return row


def store_object(row: VectorStoreRow, counts: dict[str, int]) -> dict[str, Any]:
    ends = expires_at(row)
    expired = ends is not None and ends <= time.time()
    status = "expired" if expired else "in_progress" if counts.get("in_progress") else "completed"
    return {
        "id": row.id,
        "object": "vector_store",
        "created_at": row.created_at,
        "name": row.name,
        "description": row.description,
        "usage_bytes": counts.get("usage_bytes", 0),
        "file_counts": _file_counts(counts),
        "status": status,
        "last_active_at": row.last_active_at,
        "metadata": row.metadata_,
        "expires_after": row.expires_after,
        "expires_at": ends,
    }


def file_object(row: VectorStoreFileRow) -> dict[str, Any]:
    return {
        "id": row.file_id,
        "object": "vector_store.file",
        "created_at": row.created_at,
        "vector_store_id": row.vector_store_id,
        "status": row.status,
        "last_error": row.last_error,
        "usage_bytes": row.usage_bytes,
        "attributes": row.attributes,
        "chunking_strategy": row.chunking,
    }


def batch_object(row: VectorStoreFileBatchRow, counts: dict[str, int]) -> dict[str, Any]:
    status = "cancelled" if row.cancelled else "in_progress"
    if not row.cancelled and not counts.get("in_progress"):
        status = "failed" if counts.get("failed") and not counts.get("completed") else "completed"
    return {
        "id": row.id,
        "object": "vector_store.files_batch",
        "created_at": row.created_at,
        "vector_store_id": row.vector_store_id,
        "status": status,
        "file_counts": _file_counts(counts),
    }


class VectorStores:
    """The operations behind the routes, for one app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = VectorStoreRepository(ctx.db)
        self.files = FileService(ctx)

    def _wake(self) -> None:
        if self.ctx.ingestor is not None:
            self.ctx.ingestor.wake.set()

    async def describe(self, row: VectorStoreRow) -> dict[str, Any]:
        counts = (await self.repo.counts([row.id]))[row.id]
        return store_object(row, counts)

    async def create(self, project_id: str, body: StoreCreate) -> dict[str, Any]:
        strategy = chunking_strategy(body.chunking_strategy)
        now = int(time.time())
        row = VectorStoreRow(
            id=new_id("vs_", 12),
            project_id=project_id,
            name=body.name or "",
            description=body.description,
            created_at=now,
            last_active_at=now,
            metadata_=dict(body.metadata or {}),
            expires_after=body.expires_after.model_dump() if body.expires_after else None,
        )
        await self.repo.insert(row)
        if body.file_ids:
            specs: list[Spec] = [(f, None, strategy) for f in body.file_ids]
            await self._attach(project_id, row.id, specs, None, param="file_ids")
        return await self.describe(row)

    async def _attach(
        self,
        project_id: str,
        store_id: str,
        specs: list[Spec],
        batch_id: str | None,
        *,
        param: str,
    ) -> list[VectorStoreFileRow]:
        for file_id, _, _ in specs:  # every file must be the project's own (404 otherwise)
            await self.files.get_row(project_id, file_id)
        now = int(time.time())
        rows = [
            VectorStoreFileRow(
                vector_store_id=store_id,
                file_id=file_id,
                project_id=project_id,
                batch_id=batch_id,
                created_at=now,
                status="in_progress",
                attributes=attributes,
                chunking=strategy,
                usage_bytes=0,
            )
            for file_id, attributes, strategy in specs
        ]
        await self.repo.attach(rows)
        await self.repo.update_store(project_id, store_id, last_active_at=now)
        self._wake()
        return rows

    async def attach_file(
        self,
        project_id: str,
        store_id: str,
        file_id: str,
        attributes: dict[str, Any] | None,
        raw_strategy: dict[str, Any] | None,
    ) -> dict[str, Any]:
        await self.repo.store(project_id, store_id)
        strategy = chunking_strategy(raw_strategy)
        rows = await self._attach(
            project_id, store_id, [(file_id, attributes, strategy)], None, param="file_id"
        )
        return file_object(rows[0])

    async def create_batch(
        self, project_id: str, store_id: str, body: BatchCreate
    ) -> dict[str, Any]:
        await self.repo.store(project_id, store_id)
        if bool(body.file_ids) == bool(body.files):
            raise InvalidRequestError("Give either file_ids or files.", param="file_ids")
        default = chunking_strategy(body.chunking_strategy)
        specs: list[Spec]
        if body.files:
            specs = [
                (
                    f.file_id,
                    f.attributes,
                    chunking_strategy(f.chunking_strategy) if f.chunking_strategy else default,
                )
                for f in body.files
            ]
        else:
            specs = [(f, body.attributes, default) for f in body.file_ids or []]
        batch = VectorStoreFileBatchRow(
            id=new_id("vsfb_", 12),
            project_id=project_id,
            vector_store_id=store_id,
            created_at=int(time.time()),
            cancelled=False,
        )
        await self.repo.insert(batch)
        await self._attach(project_id, store_id, specs, batch.id, param="files")
        return await self.batch(project_id, store_id, batch.id)

    async def batch(self, project_id: str, store_id: str, batch_id: str) -> dict[str, Any]:
        row = await self.repo.batch(project_id, store_id, batch_id)
        return batch_object(row, await self.repo.batch_counts(batch_id))

    async def cancel_batch(self, project_id: str, store_id: str, batch_id: str) -> dict[str, Any]:
        await self.repo.cancel_batch(project_id, store_id, batch_id)
        return await self.batch(project_id, store_id, batch_id)

    async def content(self, project_id: str, store_id: str, file_id: str) -> list[dict[str, Any]]:
        await self.repo.file(project_id, store_id, file_id)
        return [{"type": "text", "text": t} for t in await self.repo.file_texts(store_id, file_id)]

    # -- search ---------------------------------------------------------------------------

    async def index(self, store_id: str) -> Index:
        """The store's search index: cached, extended when the store only gained chunks,
        rebuilt when it lost some."""
        version = await self.repo.chunk_version(store_id)
        cached = self.ctx.vector_indexes.get(store_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        built: Index | None = None
        if cached is not None and version[0] > cached[0][0] and version[1] > cached[0][1]:
            newer = await self.repo.chunks(store_id, after_id=cached[0][1])
            if len(newer) == version[0] - cached[0][0]:  # nothing older went
                built = await asyncio.to_thread(cached[1].extended, newer)
        if built is None:
            built = await asyncio.to_thread(Index.build, await self.repo.chunks(store_id))
        indexes = self.ctx.vector_indexes
        indexes[store_id] = (version, built)
        indexes.move_to_end(store_id)
        while len(indexes) > INDEXES_KEPT:
            indexes.popitem(last=False)
        return built

    async def search(
        self, project_id: str, store_id: str, body: SearchRequest, mode: Mode = "hybrid"
    ) -> dict[str, Any]:
        store = usable(await self.repo.store(project_id, store_id))
        if body.filters is not None:
            check_filter(body.filters, "filters")
        queries = [body.query] if isinstance(body.query, str) else list(body.query)
        hits = await self.ranked(store.id, " ".join(queries), body, mode)
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": hits,
            "has_more": False,
            "next_page": None,
        }

    async def ranked(
        self, store_id: str, query: str, body: SearchRequest, mode: Mode = "hybrid"
    ) -> list[dict[str, Any]]:
        """The best chunks for ``query``, with their files' names and attributes."""
        await self.repo.touch(store_id, int(time.time()))
        index = await self.index(store_id)
        files = {r.file_id: r for r in await self.repo.completed_files(store_id)}
        names = await self.files.filenames(list(files))
        passing = {f for f, r in files.items() if matches(body.filters, r.attributes)}
        allowed = np.array([f in passing for f in index.file_ids], dtype=bool)
        vector = None
        if mode != "keyword" and query.strip() and index.chunk_ids:
            vector = await (await embedder(self.ctx)).query(query)
        scores = index.rank(query, vector, allowed, mode)
        threshold = (body.ranking_options.score_threshold if body.ranking_options else None) or 0.0
        order = np.argsort(-scores, kind="stable")[: body.max_num_results]
        return [
            {
                "file_id": index.file_ids[i],
                "filename": names.get(index.file_ids[i], ""),
                "score": round(float(scores[i]), 6),
                "attributes": files[index.file_ids[i]].attributes or {},
                "content": [{"type": "text", "text": index.texts[i]}],
            }
            for i in order
            if scores[i] >= 0 and scores[i] >= threshold and scores[i] > 0
        ]
