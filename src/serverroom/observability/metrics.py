"""Prometheus metrics: what ``GET /metrics`` shows, in the Prometheus text format.

Each app has its own ``Metrics`` (its own registry: no process-wide collector state). Counters
and histograms are updated as work happens: HTTP requests by the middleware, tokens and
rate-limit refusals by the metering seam (``observability.metering``), queue wait, time to
first token and time per output token by each engine's ``GenerationObserver``. Gauges (engine
load, KV cache, batch lines, upstream members) are read fresh on every scrape (``refresh``).
Engine metrics are labelled with the real model (``target``); request and token metrics with
the name the client used. Each replica reports its own process; batch gauges read the shared
database, so every replica reports the same values for them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from serverroom import __version__
from serverroom.engine.base import GenerationObserver, GenerationRecord

if TYPE_CHECKING:
    from serverroom.context import AppContext

logger = logging.getLogger("serverroom.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_PER_TOKEN = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class Metrics:
    """The app's metric families."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "serverroom_requests",
            "HTTP requests answered, by route template, method, status, model and project.",
            ["route", "method", "status", "model", "project"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "serverroom_request_duration_seconds",
            "Time from a request's arrival to the end of its reply (a stream's last byte).",
            ["route", "model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.tokens = Counter(
            "serverroom_tokens",
            "Tokens billed, by model, project and kind (input, cached_input, output,"
            " reasoning; cached and reasoning tokens are also counted in input and output).",
            ["model", "project", "kind"],
            registry=r,
        )
        self.rate_limited = Counter(
            "serverroom_rate_limit_rejections",
            "Requests refused with a 429 by a rate limit, by model, project and limit.",
            ["model", "project", "limit"],
            registry=r,
        )
        self._engine_metrics(r)
        self._state_gauges(r)
        Gauge("serverroom_build_info", "The serverroom version.", ["version"], registry=r).labels(
            __version__
        ).set(1)

    def _engine_metrics(self, r: CollectorRegistry) -> None:
        self.queue_seconds = Histogram(
            "serverroom_queue_wait_seconds",
            "Time a generation waited for an engine slot.",
            ["model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.ttft = Histogram(
            "serverroom_time_to_first_token_seconds",
            "Time from a generation's start to its first token (queue wait and prefill).",
            ["model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.per_token = Histogram(
            "serverroom_time_per_output_token_seconds",
            "Mean time between a generation's tokens after the first.",
            ["model"],
            buckets=_PER_TOKEN,
            registry=r,
        )
        self.forced_tokens = Counter(
            "serverroom_forced_output_tokens",
            "Output tokens a JSON schema or tool grammar forced, appended without sampling"
            " (engine.fast_forward); also counted in the output tokens.",
            ["model"],
            registry=r,
        )
        self.generations = Counter(
            "serverroom_generations",
            "Generations on local engines and upstream servers, by model and how they ended.",
            ["model", "finish_reason"],
            registry=r,
        )

    def _state_gauges(self, r: CollectorRegistry) -> None:
        def gauge(name: str, text: str, labels: list[str]) -> Gauge:
            return Gauge(name, text, labels, registry=r)

        self.running = gauge(
            "serverroom_engine_running_sequences", "Sequences in engine slots.", ["model"]
        )
        self.queued = gauge(
            "serverroom_engine_queued_sequences", "Sequences waiting for a slot.", ["model"]
        )
        self.slots = gauge(
            "serverroom_engine_slots", "Engine slots (parallel sequences).", ["model"]
        )
        self.kv_tokens = gauge(
            "serverroom_engine_kv_cache_tokens", "Tokens held in the KV cache.", ["model"]
        )
        self.kv_usage = gauge(
            "serverroom_engine_kv_cache_usage_ratio",
            "Share of the KV cache's tokens in use (0 to 1).",
            ["model"],
        )
        self.threads = gauge(
            "serverroom_engine_threads",
            "CPU threads a local engine computes with now (engine.adapt_threads).",
            ["model"],
        )
        self.ready = gauge("serverroom_model_ready", "1 when a loaded model serves.", ["model"])
        self.batch_lines = gauge(
            "serverroom_batch_requests", "Batch API lines, by state (all batches).", ["state"]
        )
        self.batches = gauge("serverroom_batches", "Batch API batches, by status.", ["status"])
        self.upstream_up = gauge(
            "serverroom_upstream_member_up",
            "1 while an upstream pool member is healthy.",
            ["model", "url"],
        )
        self.upstream_inflight = gauge(
            "serverroom_upstream_member_inflight",
            "Requests in flight to an upstream pool member.",
            ["model", "url"],
        )

    # ----- recording -----
    def request_done(
        self, route: str, method: str, status: int, model: str, project: str, seconds: float
    ) -> None:
        self.requests.labels(route, method, str(status), model, project).inc()
        self.request_seconds.labels(route, model).observe(seconds)

    def billed(self, model: str, project: str, counts: dict[str, int]) -> None:
        for kind, count in counts.items():
            if count > 0:
                self.tokens.labels(model, project, kind).inc(count)

    def observer(self, model: str) -> GenerationObserver:
        return _EngineObserver(self, model)

    # ----- scraping -----
    async def refresh(self, ctx: AppContext) -> None:
        """Read the gauges' current values from the engines, the pools and the database (a
        database that does not answer leaves the batch gauges as they were)."""
        self._engines(ctx)
        self._upstreams(ctx)
        try:
            await self._batches(ctx)
        except Exception:  # the other metrics matter most when something is down
            logger.warning("metrics: the batch gauges could not be read", exc_info=True)

    def _engines(self, ctx: AppContext) -> None:
        families = (self.running, self.queued, self.slots, self.kv_tokens, self.kv_usage)
        for family in (*families, self.threads):
            family.clear()
        self.ready.clear()
        for model, engine in ctx.engines.loaded().items():
            self.ready.labels(model).set(1 if engine.ready else 0)
            if not engine.ready:
                continue
            load = engine.load()
            self.running.labels(model).set(load.running)
            self.queued.labels(model).set(load.queued)
            self.slots.labels(model).set(load.slots)
            self.kv_tokens.labels(model).set(load.kv_tokens)
            if load.kv_capacity:
                self.kv_usage.labels(model).set(load.kv_tokens / load.kv_capacity)
            if load.threads:
                self.threads.labels(model).set(load.threads)

    def _upstreams(self, ctx: AppContext) -> None:
        self.upstream_up.clear()
        self.upstream_inflight.clear()
        pools = ctx.upstreams.all() if ctx.upstreams is not None else {}
        for model, upstream in pools.items():
            for member in upstream.pool.members:
                self.upstream_up.labels(model, member.url).set(1 if member.healthy else 0)
                self.upstream_inflight.labels(model, member.url).set(member.inflight)

    async def _batches(self, ctx: AppContext) -> None:
        from serverroom.storage.tables.batches import BatchLineRow, BatchRow

        async with ctx.db.session() as session:
            lines = await session.execute(
                select(BatchLineRow.status, func.count()).group_by(BatchLineRow.status)
            )
            batches = await session.execute(
                select(BatchRow.status, func.count()).group_by(BatchRow.status)
            )
        self.batch_lines.clear()
        for state, count in lines.all():
            self.batch_lines.labels(state).set(count)
        self.batches.clear()
        for status, count in batches.all():
            self.batches.labels(status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineObserver:
    """One model's ``GenerationObserver``: its engine's timings into the histograms."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.queue = metrics.queue_seconds.labels(model)
        self.ttft = metrics.ttft.labels(model)
        self.per_token = metrics.per_token.labels(model)
        self.forced = metrics.forced_tokens.labels(model)
        self.generations = metrics.generations
        self.model = model

    def finished(self, record: GenerationRecord) -> None:
        self.generations.labels(self.model, record.reason).inc()
        if record.forced_tokens:
            self.forced.inc(record.forced_tokens)
        if record.waited is not None:
            self.queue.observe(record.waited)
        first = record.first_after
        if first is not None:
            self.ttft.observe(first)
            if record.output_tokens > 1:
                self.per_token.observe((record.after - first) / (record.output_tokens - 1))
