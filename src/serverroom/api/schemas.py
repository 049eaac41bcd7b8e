"""Request-model building blocks shared by the resources.

Request models accept unknown fields (the SDK forwards ``extra_body``) but type-check the known
ones strictly enough that a bad value is a clear 400 naming its parameter.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# (top-level list field, the RequestLimits setting bounding it, what its items are), checked
# by ``api.routing`` as soon as the body is decoded, before its items are validated.
ListLimits = tuple[tuple[str, str, str], ...]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    list_limits: ClassVar[ListLimits] = ()


def _metadata_limits(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"metadata keys must be at most 64 characters, got {key[:70]!r}")
        if len(item) > 512:
            raise ValueError(f"metadata values must be at most 512 characters (key {key!r})")
    return value


# The platform's metadata: up to 16 pairs, keys <= 64 and values <= 512 characters.
Metadata = Annotated[dict[str, str], Field(max_length=16), AfterValidator(_metadata_limits)]
_TOKEN_ID = re.compile(r"-?[0-9]+")  # ASCII digits only: int() also takes "²" and "٣"


class StreamOptions(RequestModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class SamplingFields(RequestModel):
    """Sampling parameters common to Chat and legacy Completions."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_limit(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not _TOKEN_ID.fullmatch(key):
                raise ValueError(f"logit_bias keys must be token ids, got {key!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias values must be in [-100, 100], got {bias}")
        return value

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)
