"""The application context: every long-lived object a request may need, built once per app.

There are no module globals: ``create_app`` builds one ``AppContext`` and stores it on
``app.state``; routes reach it through the ``get_context`` dependency, written ``ctx: Ctx``, and
the caller through ``get_principal``, written ``principal: Caller``; a generation or embedding
route takes both at once as a ``Call``, written ``call: CallDep``. Each long-lived service a
resource adds (accounts, the embedding registry, the batch worker, the background responses'
tasks and event logs) is a typed field, set by whoever owns it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from serverroom.catalog import Catalog, ModelEntry
from serverroom.engine.embeddings import EmbeddingRegistry
from serverroom.engine.registry import EngineRegistry
from serverroom.ids import new_id
from serverroom.metering import Admission, Metering, NullMetering, Ticket
from serverroom.observability.metrics import Metrics
from serverroom.observability.tracing import Tracing
from serverroom.principal import DEFAULT_PROJECT, Principal
from serverroom.sealing import Sealer
from serverroom.settings import Settings
from serverroom.storage.db import Database

if TYPE_CHECKING:
    from serverroom.accounts.service import Accounts
    from serverroom.api.batches.worker import BatchWorker
    from serverroom.api.responses.replay import EventLog
    from serverroom.api.vector_stores.ingest import Ingestor
    from serverroom.api.vector_stores.search import Index
    from serverroom.api.webhooks.delivery import WebhookWorker
    from serverroom.upstream import Upstreams


@dataclass
class AppContext:
    settings: Settings
    catalog: Catalog
    engines: EngineRegistry
    db: Database
    metering: Metering = field(default_factory=NullMetering)
    embeddings: EmbeddingRegistry = field(default_factory=EmbeddingRegistry)
    upstreams: Upstreams | None = None  # the catalog's upstream models (``create_app``)
    accounts: Accounts | None = None  # ``accounts.service.install``: None without accounts
    batch_worker: BatchWorker | None = None  # set while the Batch API worker runs
    ingestor: Ingestor | None = None  # set while vector-store ingestion runs
    webhook_worker: WebhookWorker | None = None  # set while webhook deliveries run
    # vector stores' search indexes, most recently used last: store id -> (chunk version, index)
    vector_indexes: OrderedDict[str, tuple[tuple[int, int], Index]] = field(
        default_factory=OrderedDict
    )
    response_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # background
    response_logs: OrderedDict[str, EventLog] = field(default_factory=OrderedDict)
    replica_id: str = field(default_factory=lambda: new_id("replica_"))  # owns leases
    metrics: Metrics = field(default_factory=Metrics)  # what /metrics shows
    tracing: Tracing | None = None  # OpenTelemetry spans (``create_app``; None: off)
    sealer: Sealer = field(init=False)  # seals reasoning for stateless clients
    # prompts with images rendered at once (``api.image_data.encoding_turn``)
    image_prompts: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    def __post_init__(self) -> None:
        secret = self.settings.secret_key
        self.sealer = Sealer(
            secret.get_secret_value() if secret else None, self.settings.data_dir / "secret.key"
        )


# What a resource package exports as ``lifespan``: entered with the app, after migrations.
Lifespan = Callable[[AppContext], AbstractAsyncContextManager[None]]


def context_of(request: HTTPConnection) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
# a hand-off that costs more than the dependency itself.
async def get_context(request: Request) -> AppContext:
    return context_of(request)


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def get_principal(request: Request) -> Principal:
    """The caller, from its API key (``serverroom.accounts.auth``); 401 when it is not valid."""
    return await principal_of(request)


async def principal_of(request: HTTPConnection) -> Principal:
    """The caller of a request or a WebSocket (``get_principal``)."""
    accounts = context_of(request).accounts
    if accounts is None:
        return Principal(project_id=DEFAULT_PROJECT)
    return await accounts.auth.principal(request)


Ctx = Annotated[AppContext, Depends(get_context)]
Caller = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class Call:
    """One request for model work: the app it runs in, who makes it, and how it runs.

    ``batch``: a Batch API line, billed at the batch rate and queued at ``priority`` behind
    interactive requests (priority 0); the route and the batch worker share the services.
    """

    ctx: AppContext
    principal: Principal
    batch: bool = False
    priority: int = 0

    async def admit(
        self, entry: ModelEntry, endpoint: str, *, prompt_tokens: int, max_output_tokens: int
    ) -> Ticket:
        """Reserve rate-limit capacity for the work (raises ``RateLimitError``)."""
        admission = Admission(
            self.principal, entry, endpoint, prompt_tokens, max_output_tokens, self.batch
        )
        return await self.ctx.metering.admit(admission)


async def get_call(ctx: Ctx, principal: Caller) -> Call:
    return Call(ctx, principal)


CallDep = Annotated[Call, Depends(get_call)]
