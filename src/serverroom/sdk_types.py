"""Readies the openai SDK's response types before the first request.

The SDK defines its pydantic models with ``defer_build``: a class builds its validator the
first time it is used, which made the first Responses request of a fresh server take ~0.3 s
longer than the next. ``build_sdk_types`` builds them all at start-up instead (a few hundred
milliseconds, once per process).
"""

from __future__ import annotations

from collections.abc import Iterator

from openai import BaseModel


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def build_sdk_types() -> int:
    """Build every SDK model class not built yet; returns how many were built."""
    built = 0
    for cls in set(_subclasses(BaseModel)):
        if not cls.__pydantic_complete__:
            cls.model_rebuild()
            built += 1
    return built
