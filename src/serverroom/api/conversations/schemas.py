"""Request models of the Conversations API."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serverroom.api.responses.schemas import CheckedMetadata
from serverroom.api.schemas import RequestModel

MAX_ITEMS = 20


class ConversationCreateRequest(RequestModel):
    items: list[Any] | None = Field(None, max_length=MAX_ITEMS)
    metadata: CheckedMetadata | None = None


class ConversationUpdateRequest(RequestModel):
    metadata: CheckedMetadata


class ItemsCreateRequest(RequestModel):
    items: list[Any] = Field(min_length=1, max_length=MAX_ITEMS)
