"""One embedding engine per catalog model, loaded lazily off the event loop.

The registry also serialises forward passes (numpy already uses every core for one batch),
lets interactive requests go before batch work (a waiting interactive call is served before
any waiting batch call), and merges concurrent small requests into one pass (``merging``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from serverroom.catalog import ModelEntry, locate_weights
from serverroom.engine.embeddings.base import EmbeddingEngine, EmbeddingInput
from serverroom.engine.embeddings.merging import Merger, Request
from serverroom.errors import ServiceUnavailableError

logger = logging.getLogger("serverroom.embeddings")

EmbeddingFactory = Callable[[ModelEntry], EmbeddingEngine]
SLICE = 64  # inputs per forward-pass slice (the unit of scheduling)


def default_embedding_factory(entry: ModelEntry) -> EmbeddingEngine:
    """Build the engine an embedding entry names (``backend = "numpy"``: ``BertEngine``)."""
    ref = entry.options.get("weights")
    if not isinstance(ref, str):
        raise ValueError(f"embedding model {entry.target} has no options.weights")
    from serverroom.engine.embeddings.bert import BertEngine

    return BertEngine(locate_weights(ref), max_tokens=entry.context_length)


class _PriorityLock:
    """A mutex whose waiters are served lowest ``priority`` first, then in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    async def acquire(self, priority: int) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._counter), fut))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed the lock while being cancelled
            else:
                self._waiters = [w for w in self._waiters if w[2] is not fut]
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._held = False


class EmbeddingRegistry:
    """Hands out the loaded engine for an embedding model and runs its forward passes."""

    def __init__(self, factory: EmbeddingFactory | None = None) -> None:
        self._factory = factory or default_embedding_factory
        self._engines: dict[str, EmbeddingEngine] = {}
        self._loading: dict[str, asyncio.Task[EmbeddingEngine]] = {}
        self._lock = _PriorityLock()
        self._merger = Merger(SLICE)

    async def get(self, entry: ModelEntry) -> EmbeddingEngine:
        engine = self._engines.get(entry.target)
        if engine is not None:
            return engine
        task = self._loading.get(entry.target)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.create_task(asyncio.to_thread(self._factory, entry))
            self._loading[entry.target] = task
        try:
            engine = await asyncio.shield(task)
        except Exception as exc:
            logger.exception("loading embedding model %s failed", entry.target)
            raise ServiceUnavailableError(
                f"The model `{entry.id}` could not be loaded: {exc}"
            ) from exc
        self._engines[entry.target] = engine
        return engine

    async def close(self) -> None:
        """Forget every engine; a load still running is awaited (its thread cannot be
        interrupted) so that nothing outlives the app."""
        loading = list(self._loading.values())
        self._loading.clear()
        await asyncio.gather(*loading, return_exceptions=True)
        await self._merger.close()
        self._engines.clear()

    async def embed(
        self, engine: EmbeddingEngine, items: Sequence[EmbeddingInput], *, priority: int = 0
    ) -> npt.NDArray[np.float32]:
        """Run ``engine.embed`` in a worker thread, one slice at a time.

        Large requests are cut into slices of ``SLICE`` inputs and the lock is taken per slice,
        so an interactive request waits for at most one slice of a big (batch) request; a
        request of at most ``SLICE`` inputs may share its pass with others (``merging``).
        """
        if len(items) <= SLICE:
            return await self._merged(engine, items, priority)
        parts: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(items), SLICE):
            await self._lock.acquire(priority)
            try:
                parts.append(await asyncio.to_thread(engine.embed, items[start : start + SLICE]))
            finally:
                self._lock.release()
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    async def _merged(
        self, engine: EmbeddingEngine, items: Sequence[EmbeddingInput], priority: int
    ) -> npt.NDArray[np.float32]:
        request = Request(engine, items, priority)
        self._merger.join(request)
        try:
            await self._lock.acquire(priority)
        except BaseException:
            self._merger.forget(request)
            raise
        if request.result.done():  # another request's pass embedded it
            self._lock.release()
        else:
            self._merger.start(request, self._lock.release)
        return await request.result
