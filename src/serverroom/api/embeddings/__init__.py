"""Embeddings: ``POST /v1/embeddings`` on local embedding models."""

from __future__ import annotations

from serverroom.api.embeddings.router import router
from serverroom.api.embeddings.service import lifespan

__all__ = ["lifespan", "router"]
