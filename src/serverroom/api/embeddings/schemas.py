"""Request model of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serverroom.api.schemas import RequestModel


class EmbeddingRequest(RequestModel):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
