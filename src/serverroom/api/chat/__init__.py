"""Chat Completions: ``POST /v1/chat/completions``."""

from __future__ import annotations

from serverroom.api.chat.router import router

__all__ = ["router"]
