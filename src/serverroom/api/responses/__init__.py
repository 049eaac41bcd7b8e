"""The Responses API: stored, streamed and background responses."""

from __future__ import annotations

from serverroom.api.responses.background import lifespan
from serverroom.api.responses.router import router
from serverroom.api.responses.websocket import router as socket_router

__all__ = ["lifespan", "router", "socket_router"]
