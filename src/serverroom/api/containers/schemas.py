"""Request bodies of the Containers API (a bad value is a 400 naming its parameter)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serverroom.api.schemas import RequestModel

MemoryLimit = Literal["1g", "4g", "16g", "64g"]
DEFAULT_MINUTES = 20  # the platform's: a container expires 20 minutes after its last use
MAX_MINUTES = 1440  # this server's bound (the platform publishes none)
MAX_FILE_IDS = 100  # files copied in when a container is created


class ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: Literal["last_active_at"]
    minutes: int = Field(ge=1, le=MAX_MINUTES)


class NetworkPolicy(BaseModel):
    """Code here never has network access: ``disabled`` is the one policy there is."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["disabled"]


class ContainerCreate(RequestModel):
    name: str = Field(max_length=512)
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] | None = Field(None, max_length=MAX_FILE_IDS)
    memory_limit: MemoryLimit = "1g"
    network_policy: NetworkPolicy | None = None
    skills: list[dict[str, Any]] | None = None  # none can be run here: refused when given


class FileCopy(RequestModel):
    """A container file's JSON body: a Files API file copied in."""

    file_id: str = Field(max_length=64)
