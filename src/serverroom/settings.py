"""The one configuration model of serverroom.

Every setting comes from one place: ``Settings``. Values are read from environment variables
with the ``SERVERROOM_`` prefix (nested groups use ``__``, e.g. ``SERVERROOM_ENGINE__SLOTS``)
and the same fields are exposed as command-line flags by ``serverroom serve`` (``--port``,
``--engine.slots`` ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".serverroom"


class EngineSettings(BaseModel):
    """How local llama.cpp engines are run."""

    kind: Literal["llamacpp", "fake"] = Field(
        "llamacpp", description="Engine for local models: llama.cpp, or the fake one used in tests."
    )
    slots: int = Field(4, ge=1, le=256, description="Sequences decoded together (parallel slots).")
    slot_context: int = Field(
        8192, ge=256, description="KV-cache tokens per slot; caps the usable context length."
    )
    batch_size: int = Field(512, ge=32, description="Tokens per llama_decode call (n_batch).")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    max_queue: int = Field(
        64, ge=0, description="Requests waiting for a free slot before new ones get 503."
    )
    fake_delay: float = Field(0.0, ge=0, description="Seconds per token for the fake engine.")


class Settings(BaseSettings):
    """All of serverroom's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SERVERROOM_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    data_dir: Path = Field(default_factory=_default_data_dir, description="Where state lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite in the data directory."
    )
    redis_url: str | None = Field(None, description="Redis URL for state shared by replicas.")
    catalog_file: Path | None = Field(
        None, description="A TOML model catalog that overrides and extends the built-in one."
    )
    default_model: str = Field(
        "smollm2-135m-instruct", description="Model loaded eagerly at start-up."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    engine: EngineSettings = Field(default_factory=EngineSettings)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'serverroom.db'}"
