"""The application factory: ``create_app(settings)`` builds a complete serverroom app.

It wires the catalog, the engine and embedding registries and the resources (``RESOURCES``:
each package's router and lifespan), installs the one error handler and the request-id
middleware, and starts the default model in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI
from opentelemetry.sdk.trace import TracerProvider

from serverroom import __version__, dashboard
from serverroom.accounts import service as accounts_service
from serverroom.api import (
    batches,
    chat,
    completions,
    containers,
    conversations,
    embeddings,
    files,
    models,
    organization,
    passthrough,
    responses,
    vector_stores,
    webhooks,
)
from serverroom.api.errors import install_error_handlers
from serverroom.api.health import router as health_router
from serverroom.api.metrics import router as metrics_router
from serverroom.api.openapi import install_openapi
from serverroom.banner import announce_when_ready
from serverroom.catalog import Catalog
from serverroom.context import AppContext, Lifespan, get_principal
from serverroom.engine.base import GenerationObserver
from serverroom.engine.embeddings.registry import EmbeddingFactory, EmbeddingRegistry
from serverroom.engine.registry import EngineFactory, EngineRegistry, default_factory
from serverroom.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serverroom.observability.metering import ObservedMetering
from serverroom.observability.metrics import Metrics
from serverroom.observability.tracing import GenerationObservers, Tracing
from serverroom.settings import Settings
from serverroom.storage.db import Database
from serverroom.upstream import Upstreams
from serverroom.warmup import warm_up

logger = logging.getLogger("serverroom")


@dataclass(frozen=True)
class Resource:
    """One API resource: its router (mounted under ``/v1``) and its lifespan, if it has one."""

    router: APIRouter
    lifespan: Lifespan | None = None


# Routers are mounted, and lifespans entered after migrations and accounts, in this order.
RESOURCES = (
    Resource(models.router),
    Resource(chat.router),
    Resource(completions.router),
    Resource(responses.router, responses.lifespan),  # start-up recovery, shutdown
    Resource(conversations.router),
    Resource(organization.router),
    Resource(embeddings.router, embeddings.lifespan),  # closes the embedding engines
    Resource(files.router),
    Resource(containers.router),  # the code interpreter's containers
    Resource(batches.router, batches.lifespan),  # the Batch API worker
    Resource(passthrough.router),  # images and audio, on upstream models
    Resource(vector_stores.router, vector_stores.lifespan),  # the ingestion worker
    Resource(webhooks.router, webhooks.lifespan),  # the delivery worker
)


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    embedding_factory: EmbeddingFactory | None = None,
    catalog: Catalog | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build the ASGI app. Tests pass a fake engine factory (and a tracer provider with an
    in-memory exporter); ``serve`` passes nothing."""
    settings = settings or Settings()
    catalog = catalog or Catalog.load(settings.catalog_file)
    metrics = Metrics()
    tracing = Tracing(settings.tracing, tracer_provider)

    def observers(model: str) -> GenerationObserver:
        return GenerationObservers(metrics.observer(model), tracing.observer(model))

    registry = EngineRegistry(
        catalog, engine_factory or default_factory(settings), observer=observers
    )
    db = Database(settings.resolved_database_url())
    tracing.instrument(db.engine)
    embeddings_registry = EmbeddingRegistry(embedding_factory)
    upstreams = Upstreams(catalog, observer=observers)  # upstream generations: same metrics
    context = AppContext(
        settings,
        catalog,
        registry,
        db,
        embeddings=embeddings_registry,
        upstreams=upstreams,
        metrics=metrics,
        tracing=tracing,
    )
    accounts_service.install(context)  # metering + authentication
    context.metering = ObservedMetering(context.metering, metrics)  # tokens, 429s, labels

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate()
        loading = registry.start_in_background(settings.default_model)
        await asyncio.to_thread(warm_up, app)  # while the model loads
        announce: asyncio.Task[None] | None = None
        try:
            async with AsyncExitStack() as stack:
                # Accounts first: the bootstrap admin key must exist before requests are served.
                await stack.enter_async_context(accounts_service.lifespan(context))
                await stack.enter_async_context(upstreams.running())
                for resource in RESOURCES:
                    if resource.lifespan is not None:
                        await stack.enter_async_context(resource.lifespan(context))
                announce = asyncio.create_task(announce_when_ready(context, loading))
                yield
        finally:
            if announce is not None:
                announce.cancel()
            await registry.close()
            await db.close()
            tracing.shutdown()

    app = FastAPI(
        title="serverroom",
        version=__version__,
        description="A self-hosted OpenAI API platform on local models.",
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router)
    app.include_router(metrics_router)
    for resource in RESOURCES:
        # Every /v1 route authenticates (once per request: FastAPI caches the dependency).
        app.include_router(resource.router, prefix="/v1", dependencies=[Depends(get_principal)])
    # The Responses WebSocket authenticates itself: a bad key is an error event on the socket.
    app.include_router(responses.socket_router, prefix="/v1")
    if settings.dashboard.enabled:
        dashboard.install(app)  # its pages take an admin's sign-in, not a bearer key
    limits = settings.requests
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, tracing=tracing)
    return app
