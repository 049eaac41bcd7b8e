"""The Conversations API: durable lists of items that responses can build on."""

from __future__ import annotations

from serverroom.api.conversations.router import router

__all__ = ["router"]
