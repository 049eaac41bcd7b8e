"""Ingestion: attached files turned into chunks with embeddings, in the background.

The worker claims one waiting file at a time (a lease of ``replicas.lease_seconds`` in the
file's row, renewed while it works, so replicas share the work and a dead replica's file is
taken over once its lease runs out), reads its text (``chunking.extract_text``), cuts it into
chunks, embeds them (``embedder``: the catalog's embedding model), and stores chunks and
status in one transaction. A file that cannot be read fails alone, with the platform's
``last_error``. Work left by a restart is simply claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import numpy as np

from serverroom.api.files.service import FileService
from serverroom.api.vector_stores.chunking import ExtractionError, chunk_text, extract_text
from serverroom.api.vector_stores.embedder import embedder
from serverroom.api.vector_stores.repository import VectorStoreRepository
from serverroom.context import AppContext
from serverroom.errors import APIError
from serverroom.storage.tables.vector_stores import VectorStoreFileRow

logger = logging.getLogger("serverroom.vector_stores")

IDLE_SECONDS = 0.5  # how often an idle worker looks for new files


class Ingestor:
    """The ingestion worker of one app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = VectorStoreRepository(ctx.db)
        self.files = FileService(ctx)
        self.wake = asyncio.Event()

    @property
    def lease_ms(self) -> int:
        return int(self.ctx.settings.replicas.lease_seconds * 1000)

    async def _renew(self, row: VectorStoreFileRow) -> None:
        """Keep the claim while the file is worked on (every third of the lease)."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            with contextlib.suppress(Exception):
                await self.repo.renew(row, self.lease_ms)

    async def run(self) -> None:
        while True:
            try:
                row = await self.repo.claim(self.ctx.replica_id, self.lease_ms)
            except Exception:
                logger.exception("could not look for files to ingest")
                row = None
            if row is None:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_SECONDS):
                        await self.wake.wait()
                continue
            try:
                await self.ingest(row)
            except Exception:  # its status could not be written: its lease runs out, and
                # the file is claimed again (by this worker or another replica's)
                logger.exception("could not finish ingesting %s", row.file_id)

    async def ingest(self, row: VectorStoreFileRow) -> None:
        """One claimed file, to its end (completed, failed, or given up if detached)."""
        renewing = asyncio.create_task(self._renew(row))
        try:
            await self._ingest(row)
        finally:
            renewing.cancel()

    async def _ingest(self, row: VectorStoreFileRow) -> None:
        """Read, cut and embed the file, then store the outcome. A failure to store it is
        raised (the claim runs out and the file is tried again); a failure to read it is the
        file's own, stored as its ``last_error``."""
        chunks: list[tuple[int, str, int, bytes]] = []
        used, error = 0, None
        try:
            chunks, used = await self._chunks(row)
        except asyncio.CancelledError:  # shutting down: the next worker starts it over
            with contextlib.suppress(Exception):
                await asyncio.shield(self.repo.release(row))
            raise
        except ExtractionError as exc:
            error = {"code": exc.code, "message": exc.message}
        except APIError as exc:  # e.g. the file was deleted meanwhile
            error = {"code": "invalid_file", "message": exc.message}
        except Exception as exc:
            logger.exception("ingesting %s into %s failed", row.file_id, row.vector_store_id)
            error = {"code": "server_error", "message": f"Ingestion failed: {exc}"}
        if not await self.repo.finish(row, chunks, usage_bytes=used, error=error):
            logger.info("file %s left %s while it was ingested", row.file_id, row.vector_store_id)

    async def _chunks(
        self, row: VectorStoreFileRow
    ) -> tuple[list[tuple[int, str, int, bytes]], int]:
        meta = await self.files.get_row(row.project_id, row.file_id)
        data = await self.files.content(row.project_id, row.file_id)
        text = await asyncio.to_thread(extract_text, meta.filename, data)
        model = await embedder(self.ctx)
        chunks = await asyncio.to_thread(chunk_text, text, row.chunking, model.tokenize)
        vectors = await model.chunks(chunks)
        out = [
            (c.position, c.text, len(c.tokens), vectors[i].astype(np.float32).tobytes())
            for i, c in enumerate(chunks)
        ]
        return out, len(text.encode())


@contextlib.asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Run the ingestion worker with the app."""
    ingestor = Ingestor(ctx)
    ctx.ingestor = ingestor
    task = asyncio.create_task(ingestor.run())
    try:
        yield
    finally:
        ctx.ingestor = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
