"""The Batch API: ``/v1/batches`` and the background worker that runs batches."""

from __future__ import annotations

from serverroom.api.batches.router import router
from serverroom.api.batches.worker import lifespan

__all__ = ["lifespan", "router"]
