"""The Vector Stores API: stores of chunked, embedded files, and search over them (what the
Responses API's ``file_search`` tool reads)."""

from __future__ import annotations

from serverroom.api.vector_stores.ingest import lifespan
from serverroom.api.vector_stores.router import router

__all__ = ["lifespan", "router"]
