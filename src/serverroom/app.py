"""The application factory: ``create_app(settings)`` builds a complete serverroom app.

It wires the catalog, the engine registry and the per-resource routers, installs the one
error handler and the request-id middleware, and starts the default model in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from serverroom import __version__
from serverroom.accounts import service as accounts_service
from serverroom.api.batches.router import router as batches_router
from serverroom.api.batches.worker import lifespan as batches_lifespan
from serverroom.api.chat.router import router as chat_router
from serverroom.api.completions.router import router as completions_router
from serverroom.api.conversations.router import router as conversations_router
from serverroom.api.embeddings.router import router as embeddings_router
from serverroom.api.files.router import router as files_router
from serverroom.api.health import router as health_router
from serverroom.api.models.router import router as models_router
from serverroom.api.openapi import install_openapi
from serverroom.api.organization.router import router as organization_router
from serverroom.api.responses.background import lifespan as responses_lifespan
from serverroom.api.responses.router import router as responses_router
from serverroom.banner import announce_when_ready
from serverroom.catalog import Catalog
from serverroom.context import AppContext, get_principal
from serverroom.engine.registry import EngineFactory, EngineRegistry, default_factory
from serverroom.errors import install_error_handlers
from serverroom.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serverroom.settings import Settings
from serverroom.storage.db import Database
from serverroom.warmup import warm_up

logger = logging.getLogger("serverroom")

RESOURCE_ROUTERS: tuple[APIRouter, ...] = (models_router, chat_router, completions_router)
RESOURCE_ROUTERS += (responses_router, conversations_router)
RESOURCE_ROUTERS += (organization_router,)
RESOURCE_ROUTERS += (embeddings_router, files_router, batches_router)

# Per-resource lifespans, entered in order after migrations (start-up recovery, shutdown).
RESOURCE_LIFESPANS: tuple[Callable[[AppContext], AbstractAsyncContextManager[None]], ...] = (
    responses_lifespan,
)
# Accounts start first: the bootstrap admin key must exist before requests are served.
RESOURCE_LIFESPANS = (accounts_service.lifespan, *RESOURCE_LIFESPANS)
RESOURCE_LIFESPANS += (batches_lifespan,)  # the Batch API worker


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    catalog: Catalog | None = None,
) -> FastAPI:
    """Build the ASGI app. Tests pass a fake engine factory; ``serve`` passes nothing."""
    settings = settings or Settings()
    catalog = catalog or Catalog.load(settings.catalog_file)
    registry = EngineRegistry(catalog, engine_factory or default_factory(settings))
    db = Database(settings.resolved_database_url())
    context = AppContext(settings=settings, catalog=catalog, engines=registry, db=db)
    accounts_service.install(context)  # metering + authentication

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate()
        loading = registry.start_in_background(settings.default_model)
        await asyncio.to_thread(warm_up, app)  # while the model loads
        announce: asyncio.Task[None] | None = None
        try:
            async with AsyncExitStack() as stack:
                for resource_lifespan in RESOURCE_LIFESPANS:
                    await stack.enter_async_context(resource_lifespan(context))
                announce = asyncio.create_task(announce_when_ready(context, loading))
                yield
        finally:
            if announce is not None:
                announce.cancel()
            await registry.close()
            await db.close()

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
    for router in RESOURCE_ROUTERS:
        # Every /v1 route authenticates (once per request: FastAPI caches the dependency).
        app.include_router(router, prefix="/v1", dependencies=[Depends(get_principal)])
    limits = settings.requests
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout
    )
    app.add_middleware(RequestContextMiddleware)
    return app
