"""The one configuration model of serverroom.

Every setting comes from one place: ``Settings``. Values are read from environment variables
with the ``SERVERROOM_`` prefix (nested groups use ``__``, e.g. ``SERVERROOM_ENGINE__SLOTS``)
and the same fields are exposed as command-line flags by ``serverroom serve`` (``--port``,
``--engine.slots`` ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr
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
    kv_unified: bool = Field(
        False,
        description="One KV buffer shared by all slots: a prefix copied between slots shares its"
        " cells. Off (one stream per slot) keeps decoding beside other requests bit-identical"
        " to decoding alone.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads, fixed; default: all cores, fewer while that is faster.",
    )
    adapt_threads: bool = Field(
        True,
        description="Without engine.threads: measure while decoding and use fewer threads while"
        " other processes load the CPU and that is faster.",
    )
    fast_forward: bool = Field(
        True,
        description="Where a JSON schema or tool grammar allows only one continuation (keys,"
        " punctuation, a call's envelope), append those tokens without sampling and decode"
        " them in one batch.",
    )
    max_queue: int = Field(
        64, ge=0, description="Requests waiting for a free slot before new ones get 503."
    )
    fake_delay: float = Field(0.0, ge=0, description="Seconds per token for the fake engine.")
    extra_buffers: Literal["auto", "on", "off"] = Field(
        "auto",
        description="llama.cpp's extra buffer types (weights repacked for AMX/AVX-512/NEON"
        " kernels). auto: probed once per machine, build and model in a child process, off if"
        " the probe crashes; on/off: forced, no probe.",
    )
    probe_timeout: float = Field(
        120.0, gt=0, description="Seconds the start-up probe may take before it counts as hung."
    )


class AuthSettings(BaseModel):
    """API-key authentication (see docs/accounts.md)."""

    mode: Literal["auto", "dev", "keys"] = Field(
        "auto",
        description="auto: open until the first project or admin key exists, then enforced;"
        " dev: always open (any key, default project); keys: always enforced.",
    )
    admin_key: SecretStr | None = Field(
        None, description="Bootstrap admin key (sk-admin-...), stored hashed on start."
    )
    cache_seconds: float = Field(
        5.0, ge=0, description="How long a verified key is cached (only with Redis)."
    )


class LimitsSettings(BaseModel):
    """Per-project rate limits (RPM/TPM) from usage tiers."""

    enabled: bool = Field(True, description="Enforce RPM/TPM limits for authenticated keys.")
    in_dev_mode: bool = Field(False, description="Also enforce limits while auth is open.")
    window_seconds: int = Field(60, ge=1, description="Length of a rate-limit window (RPM/TPM).")
    tiers_file: Path | None = Field(None, description="TOML tier ladder replacing the built-in.")
    redis_prefix: str = Field("serverroom", description="Prefix of the accounts' Redis keys.")
    spend_alert_url: str | None = Field(
        None,
        description="A URL that also gets each spend alert (50/80/100% of a project's monthly"
        " limit) as a JSON POST.",
    )


class BatchSettings(BaseModel):
    """The Batch API worker (see docs/batches.md)."""

    concurrency: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = Field(
        "auto",
        description="Batch lines run at the same time (0: no batch worker). auto: as many as"
        " the model's engine has slots; the engine keeps one free for interactive requests and"
        " admits them first.",
    )
    priority: int = Field(1, ge=0, description="Engine priority of batch lines (0: interactive).")
    poll_seconds: float = Field(2.0, gt=0, description="How often the worker looks for work.")


class ToolSettings(BaseModel):
    """How the Responses API treats tool types it does not run, and the tools it runs on the
    model's behalf (see docs/responses.md and docs/tools.md)."""

    unsupported: Literal["reject", "ignore"] = Field(
        "reject",
        description="reject: a tool type this server does not run is a 400 naming it; ignore:"
        " it is left out (for clients that always send hosted tools, e.g. web_search).",
    )
    mcp_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Hosts (or host:port) that mcp tools may name in server_url; the server"
        " itself connects to them. '*' allows any host.",
    )
    mcp_timeout_seconds: float = Field(
        30.0, gt=0, description="Time limit of one MCP operation (listing tools, one call)."
    )
    sandbox: Literal["auto", "bubblewrap", "subprocess"] = Field(
        "auto",
        description="How code_interpreter runs code: bubblewrap (no network, a private"
        " filesystem view), subprocess (limits and a private directory only), or auto"
        " (bubblewrap where it works).",
    )
    code_timeout_seconds: float = Field(30.0, gt=0, description="Wall-clock limit of one run.")
    code_cpu_seconds: int = Field(20, ge=1, description="CPU-time limit of one run.")
    code_memory_mb: int = Field(1024, ge=64, description="Address-space limit of one run.")
    max_hosted_calls: int = Field(
        8,
        ge=1,
        description="Server-run tool calls (mcp, file_search) in one response when the request"
        " sets no max_tool_calls; after that the model must answer.",
    )


class LedgerSettings(BaseModel):
    """The usage ledger's writes (see docs/accounts.md)."""

    flush_seconds: float = Field(
        0.05,
        ge=0,
        le=10,
        description="How long an interactive request's usage row may wait to be written with"
        " others in one transaction (0: written before the reply ends; batch lines always are).",
    )


class ReplicaSettings(BaseModel):
    """Work shared by replicas on one database (see docs/deployment.md)."""

    lease_seconds: float = Field(
        15.0,
        gt=0,
        description="How long a background response stays owned by its replica without a"
        " heartbeat (renewed every third of it); after that any replica fails it.",
    )


class RequestLimits(BaseModel):
    """Bounds on one API request, checked before any work on it starts (400 or 413 above)."""

    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest JSON request body in bytes (413 above; file uploads: max_file_bytes).",
    )
    max_items: int = Field(
        4096,
        ge=1,
        description="Most chat messages, Responses input items or legacy prompts in one request.",
    )
    max_tools: int = Field(128, ge=1, description="Most tools in one request (the platform's).")
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a JSON request body may take to arrive (408 and closed after).",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a request's line and headers may take to arrive, from the connect"
        " or a keep-alive request's first byte (408 and closed after; silently closed if"
        " nothing came).",
    )


class ImageSettings(BaseModel):
    """Image inputs for local vision models (an upstream model fetches URLs by its own rules)."""

    fetch_urls: bool = Field(
        False,
        description="Fetch http(s) image URLs for local models (off: only data URLs and file"
        " ids; a URL is a 400).",
    )
    max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest image, inline or fetched, in bytes."
    )
    fetch_timeout: float = Field(
        10.0, gt=0, description="Seconds one image URL may take to download."
    )
    max_images: int = Field(
        16, ge=1, le=32, description="Most images in one request's prompt (history included)."
    )
    max_pixels: int = Field(
        32 * 1024 * 1024, ge=1, description="Largest image in pixels (width x height)."
    )
    fetch_private: bool = Field(
        False,
        description="With fetch_urls, also fetch from loopback, private and link-local"
        " addresses (off: only public ones).",
    )


class MetricsSettings(BaseModel):
    """Prometheus metrics at ``GET /metrics``."""

    enabled: bool = Field(True, description="Serve /metrics (off: a 404).")
    public: bool = Field(
        False,
        description="Serve /metrics without an admin key even while authentication is on (for"
        " a scraper on a private network).",
    )


class DashboardSettings(BaseModel):
    """The web dashboard at ``/dashboard`` (docs/dashboard.md)."""

    enabled: bool = Field(True, description="Serve the dashboard (off: a 404).")
    session_hours: float = Field(
        12.0, gt=0, le=720, description="How long a dashboard login lasts."
    )


class TracingSettings(BaseModel):
    """OpenTelemetry traces, exported over OTLP/HTTP."""

    enabled: bool = Field(False, description="Export traces (spans per request and generation).")
    endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); default: the"
        " OTEL_EXPORTER_OTLP_* environment, else localhost:4318.",
    )
    service_name: str = Field("serverroom", description="The traces' service.name.")


class WebhookSettings(BaseModel):
    """Webhook deliveries (docs/webhooks.md)."""

    poll_seconds: float = Field(1.0, gt=0, description="How often due deliveries are looked for.")
    timeout_seconds: float = Field(
        10.0, gt=0, description="Seconds an endpoint has to answer one delivery."
    )
    max_attempts: int = Field(
        8, ge=1, description="Attempts before a delivery is given up (state failed)."
    )
    backoff_seconds: float = Field(
        5.0, gt=0, description="Wait after the first failed attempt, doubled after each one."
    )
    allow_private: bool = Field(
        False,
        description="Allow endpoint URLs on loopback, private and link-local addresses (off:"
        " public addresses only).",
    )


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
    secret_key: SecretStr | None = Field(
        None,
        description="Key that seals reasoning items' encrypted_content; default: made once"
        " into <data_dir>/secret.key. Replicas must share one.",
    )
    catalog_file: Path | None = Field(
        None, description="A TOML model catalog that overrides and extends the built-in one."
    )
    default_model: str = Field(
        "smollm2-135m-instruct", description="Model loaded eagerly at start-up."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or one JSON object per line."
    )
    engine: EngineSettings = Field(default_factory=EngineSettings)
    files_dir: Path | None = Field(
        None, description="Where uploaded file bytes live; default: <data_dir>/files."
    )
    files_store: Literal["directory", "database"] = Field(
        "directory",
        description="Where file bytes live: files_dir, or the database (replicas that share no"
        " filesystem).",
    )
    max_file_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest file upload in bytes (413 above)."
    )
    batch: BatchSettings = Field(default_factory=BatchSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    requests: RequestLimits = Field(default_factory=RequestLimits)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    def resolved_files_dir(self) -> Path:
        """The blob directory of uploaded files."""
        return self.files_dir or self.data_dir / "files"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'serverroom.db'}"
