"""Start-up warm-up: the lazy state the first request would otherwise pay for.

The SDK defines its pydantic models with ``defer_build``: a class builds its validator the
first time it is used, which made the first Responses request of a fresh server take ~0.3 s
longer than the next. ``build_sdk_types`` builds them all at start-up instead (a few hundred
milliseconds, once per process).

Everything start-up builds lives as long as the process, so it is then moved out of the
garbage collector's reach (``gc.freeze``): a full collection walked those ~240,000 objects
for ~0.1 s, holding the event loop, whenever a large request body tipped the allocation count.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from openai import BaseModel
from sqlalchemy.orm import configure_mappers
from starlette.routing import NoMatchFound


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def warm_up(app: Any) -> None:
    """One-time initialisation the first request would otherwise pay: the SDK's types,
    FastAPI's per-route state and SQLAlchemy's ORM mappers; then the start-up heap frozen."""
    build_sdk_types()
    configure_mappers()
    with suppress(NoMatchFound):
        app.url_path_for("__warm_up__")  # walks every route, building what FastAPI defers
    gc.collect()
    gc.freeze()


def build_sdk_types() -> int:
    """Build every SDK model class not built yet; returns how many were built."""
    built = 0
    for cls in set(_subclasses(BaseModel)):
        if not cls.__pydantic_complete__:
            cls.model_rebuild()
            built += 1
    return built
