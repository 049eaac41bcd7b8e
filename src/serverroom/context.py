"""The application context: every long-lived object a request may need, built once per app.

There are no module globals: ``create_app`` builds one ``AppContext`` and stores it on
``app.state``; routes reach it through the ``get_context`` dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from serverroom.catalog import Catalog
from serverroom.engine.registry import EngineRegistry
from serverroom.metering import Metering, NullMetering
from serverroom.principal import DEFAULT_PROJECT, Principal
from serverroom.settings import Settings
from serverroom.storage.db import Database


@dataclass
class AppContext:
    settings: Settings
    catalog: Catalog
    engines: EngineRegistry
    db: Database
    metering: Metering = field(default_factory=NullMetering)
    extras: dict[str, Any] = field(default_factory=dict)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def get_principal(request: Request) -> Principal:
    """The caller, from its API key (``serverroom.accounts.auth``); 401 when it is not valid."""
    accounts = getattr(request.app.state.context, "extras", {}).get("accounts")
    if accounts is None:
        return Principal(project_id=DEFAULT_PROJECT)
    principal: Principal = await accounts.auth.principal(request)
    return principal
