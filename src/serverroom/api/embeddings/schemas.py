"""Request model of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from serverroom.api.schemas import RequestModel


class EmbeddingRequest(RequestModel):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("user", mode="before")
    @classmethod
    def _user_is_a_string(cls, value: object) -> object:
        # Left out is fine; an explicit null is a 400, as on the platform.
        if value is None:
            raise ValueError("expected a string, got null")
        return value
