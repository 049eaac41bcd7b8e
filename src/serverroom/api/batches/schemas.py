"""Request model of ``POST /v1/batches``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serverroom.api.schemas import Metadata, RequestModel


class OutputExpiresAfter(RequestModel):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=30 * 24 * 3600)


class BatchCreateRequest(RequestModel):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: Metadata | None = None
    output_expires_after: OutputExpiresAfter | None = None
