"""Models: ``GET /v1/models`` and ``GET /v1/models/{id}``."""

from __future__ import annotations

from serverroom.api.models.router import router

__all__ = ["router"]
