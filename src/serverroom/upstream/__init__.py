"""Upstream engines: models served by other OpenAI-compatible servers (vLLM, SGLang,
llama.cpp's ``llama-server``, Ollama, another serverroom), each through a pool of members.

``Upstreams`` owns one ``Upstream`` per upstream model of the catalog and the HTTP client they
share; its lifespan runs the health checks and closes the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from serverroom.catalog import Catalog, ModelEntry
from serverroom.engine.base import GenerationObserver
from serverroom.upstream.client import Answer, Connections, Stream, Upstream
from serverroom.upstream.pool import Member, Pool

__all__ = ["Answer", "Connections", "Member", "Pool", "Stream", "Upstream", "Upstreams"]


class Upstreams:
    """The upstream models of a catalog, by target model id."""

    def __init__(
        self, catalog: Catalog, observer: Callable[[str], GenerationObserver] | None = None
    ) -> None:
        """``observer`` gives each upstream model the observer of its generations."""
        self.connections = Connections()
        self._by_target: dict[str, Upstream] = {}
        for entry in catalog.real_models():
            if entry.upstream is not None:
                watcher = observer(entry.target) if observer is not None else None
                self._by_target[entry.target] = Upstream(entry.upstream, self.connections, watcher)

    def for_entry(self, entry: ModelEntry) -> Upstream:
        return self._by_target[entry.target]

    def all(self) -> dict[str, Upstream]:
        return dict(self._by_target)

    async def _watch(self, upstream: Upstream) -> None:
        while True:
            await upstream.probe()
            await asyncio.sleep(upstream.spec.health_interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Health checks while the app runs; the connections closed after."""
        tasks = [asyncio.create_task(self._watch(u)) for u in self._by_target.values()]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.connections.close()
