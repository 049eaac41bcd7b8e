"""Legacy Completions: ``POST /v1/completions``."""

from __future__ import annotations

from serverroom.api.completions.router import router

__all__ = ["router"]
