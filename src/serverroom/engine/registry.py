"""Which engine serves which model: one engine per real model, loaded on first use.

The default model is started when the server starts (``/health`` answers 503 until it is ready);
any other catalog model is loaded the first time a request names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from serverroom.catalog import Catalog, ModelEntry, locate_weights
from serverroom.engine.base import Engine, GenerationObserver
from serverroom.errors import ServiceUnavailableError
from serverroom.settings import Settings

logger = logging.getLogger("serverroom.engine")

EngineFactory = Callable[[ModelEntry], Engine]


def default_factory(settings: Settings) -> EngineFactory:
    """Build engines as the settings ask: llama.cpp for GGUF models, or the fake engine."""

    def build(entry: ModelEntry) -> Engine:
        engine_settings = settings.engine
        if engine_settings.kind == "fake" or entry.backend == "fake":
            from serverroom.engine.fake import FakeEngine

            return FakeEngine(
                context_length=min(entry.context_length, engine_settings.slot_context),
                slots=engine_settings.slots,
                max_queue=engine_settings.max_queue,
                delay=engine_settings.fake_delay,
            )
        if entry.backend == "llamacpp":
            from serverroom.engine.llamacpp import LlamaCppEngine

            if entry.gguf is None:
                raise ValueError(f"model {entry.target} has no gguf")
            return LlamaCppEngine(
                locate_weights(entry.gguf),
                context_length=entry.context_length,
                settings=engine_settings,
                probe_cache=settings.data_dir,
                mmproj=locate_weights(entry.mmproj) if entry.mmproj else None,
            )
        raise ValueError(f"unsupported backend {entry.backend!r} for {entry.target}")

    return build


class EngineRegistry:
    """Owns the engines; hands out the one for a catalog entry."""

    def __init__(
        self,
        catalog: Catalog,
        factory: EngineFactory,
        observer: Callable[[str], GenerationObserver] | None = None,
    ) -> None:
        """``observer`` gives each engine made the observer of its model's generations."""
        self._catalog = catalog
        self._factory = factory
        self._observer = observer
        self._engines: dict[str, Engine] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, str] = {}

    def _engine_for(self, entry: ModelEntry) -> Engine:
        engine = self._engines.get(entry.target)
        if engine is None:
            engine = self._factory(self._catalog.resolve(entry.target))
            if self._observer is not None:
                engine.observer = self._observer(entry.target)
            self._engines[entry.target] = engine
        return engine

    async def start(self, model: str) -> None:
        """Load a model now (used for the default model at start-up); an upstream model has
        nothing to load here."""
        entry = self._catalog.resolve(model)
        if entry.backend == "upstream":
            return
        await self._engine_for(entry).start()

    def start_in_background(self, model: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._start_logged(model))
        self._loading[model] = task
        return task

    async def _start_logged(self, model: str) -> None:
        try:
            await self.start(model)
        except Exception as exc:
            self._failures[model] = str(exc)
            logger.error("the model %s cannot be served: %s", model, exc)

    async def get(self, entry: ModelEntry) -> Engine:
        """The ready engine for an entry, loading it first if needed."""
        engine = self._engine_for(entry)
        if not engine.ready:
            task = self._loading.get(entry.target)
            if task is None or task.done():
                task = asyncio.create_task(engine.start())
                self._loading[entry.target] = task
            try:
                await asyncio.shield(task)
            except Exception as exc:
                logger.exception("loading %s failed", entry.target)
                raise ServiceUnavailableError(
                    f"The model `{entry.id}` could not be loaded: {exc}"
                ) from exc
        return engine

    def failure(self, model: str) -> str | None:
        """Why a model started in the background could not be loaded, if it could not."""
        return self._failures.get(model)

    def engine(self, model: str) -> Engine | None:
        """The engine of a model, loaded or not (None before anything asked for it)."""
        return self._engines.get(self._catalog.resolve(model).target)

    def loaded(self) -> dict[str, Engine]:
        """Every engine made so far (ready or still loading), by real model."""
        return dict(self._engines)

    def ready(self, model: str) -> bool:
        entry = self._catalog.resolve(model)
        if entry.backend == "upstream":
            return True  # its servers' health is the pool's (``serverroom.upstream``)
        engine = self._engines.get(entry.target)
        return engine is not None and engine.ready

    async def close(self) -> None:
        for task in self._loading.values():
            task.cancel()
        for engine in self._engines.values():
            await engine.close()
        self._engines.clear()
