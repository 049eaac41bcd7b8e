"""Request bodies of the Vector Stores API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serverroom.api.schemas import Metadata, RequestModel

Attributes = dict[str, str | float | bool]


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class StoreCreate(RequestModel):
    name: str | None = Field(None, max_length=512)
    description: str | None = Field(None, max_length=512)
    file_ids: list[str] | None = Field(None, max_length=500)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: Metadata | None = None


class StoreUpdate(RequestModel):
    name: str | None = Field(None, max_length=512)
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class FileCreate(RequestModel):
    file_id: str
    attributes: Attributes | None = Field(None, max_length=16)
    chunking_strategy: dict[str, Any] | None = None


class FileUpdate(RequestModel):
    attributes: Attributes | None = Field(..., max_length=16)


class BatchFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_id: str
    attributes: Attributes | None = Field(None, max_length=16)
    chunking_strategy: dict[str, Any] | None = None


class BatchCreate(RequestModel):
    file_ids: list[str] | None = Field(None, min_length=1, max_length=500)
    files: list[BatchFile] | None = Field(None, min_length=1, max_length=500)
    attributes: Attributes | None = Field(None, max_length=16)
    chunking_strategy: dict[str, Any] | None = None


class RankingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(None, ge=0, le=1)


class SearchRequest(RequestModel):
    query: str | list[str]
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool | None = None
