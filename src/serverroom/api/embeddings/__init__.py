"""Embeddings: ``POST /v1/embeddings`` on local embedding models."""

from __future__ import annotations

from serverroom.api.embeddings.router import router

__all__ = ["router"]
