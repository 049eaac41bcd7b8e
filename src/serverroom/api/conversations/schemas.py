"""Request models of the Conversations API."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serverroom.api.schemas import Metadata, RequestModel

MAX_ITEMS = 20


class ConversationCreateRequest(RequestModel):
    items: list[Any] | None = Field(None, max_length=MAX_ITEMS)
    metadata: Metadata | None = None


class ConversationUpdateRequest(RequestModel):
    metadata: Metadata


class ItemsCreateRequest(RequestModel):
    items: list[Any] = Field(min_length=1, max_length=MAX_ITEMS)
