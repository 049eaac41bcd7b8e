"""OpenTelemetry traces (opt-in: ``tracing.enabled``), exported over OTLP/HTTP by the SDK.

Each app has its own ``TracerProvider`` (none is installed process-wide). A request is a server
span (``POST /v1/chat/completions``) carrying its ``x-request-id``; each generation on a local
engine is a child span named as the GenAI semantic conventions name an inference
(``chat gpt-4o-mini``, with ``gen_ai.*`` model, token and finish-reason attributes) with three
children for its phases: ``queue`` (waiting for a slot), ``prefill`` (until the first token)
and ``decode``. Hosted tool calls are ``execute_tool`` spans, and every database statement a
``db`` span. Spans find their parent through the context the request runs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from serverroom import __version__
from serverroom.engine.base import GenerationObserver, GenerationRecord
from serverroom.observability.requests import RequestInfo, current_request
from serverroom.settings import TracingSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

_NS = 1_000_000_000


class Tracing:
    """The app's tracer, or nothing at all when tracing is off."""

    def __init__(self, settings: TracingSettings, provider: TracerProvider | None = None) -> None:
        """``provider``: one made by the caller (tests: with an in-memory exporter)."""
        if provider is None and settings.enabled:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            resource = Resource.create({"service.name": settings.service_name})
            provider = TracerProvider(resource=resource)
            exporter = OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint else None
            provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
        self.provider = provider
        self.tracer = provider.get_tracer("serverroom", __version__) if provider else None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

    @contextmanager
    def request(self, info: RequestInfo) -> Iterator[Span | None]:
        """The server span of one HTTP request, current while it is served."""
        if self.tracer is None:
            yield None
            return
        attributes = {
            "http.request.method": info.method,
            "url.path": info.path,
            "serverroom.request_id": info.request_id,
        }
        with self.tracer.start_as_current_span(
            f"{info.method} {info.path}", kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield span

    def request_done(self, span: Span | None, info: RequestInfo, route: str, status: int) -> None:
        if span is None:
            return
        span.update_name(f"{info.method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if info.model:
            span.set_attribute("gen_ai.request.model", info.model)
        if info.project:
            span.set_attribute("serverroom.project", info.project)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @contextmanager
    def tool(self, name: str, kind: str) -> Iterator[None]:
        """An ``execute_tool`` span around a hosted tool call (``kind``: file_search, mcp ...)."""
        if self.tracer is None:
            yield
            return
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": kind,
        }
        with self.tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes):
            yield

    def observer(self, model: str) -> GenerationObserver | None:
        return _GenerationSpans(self.tracer, model) if self.tracer is not None else None

    def instrument(self, engine: AsyncEngine) -> None:
        """A ``db`` span for every statement the database engine runs."""
        if self.tracer is not None:
            _instrument_db(self.tracer, engine)


class _GenerationSpans:
    """Writes a finished generation's span and its phases, with the times it was measured at."""

    def __init__(self, tracer: trace.Tracer, model: str) -> None:
        self.tracer = tracer
        self.model = model

    def finished(self, record: GenerationRecord) -> None:
        start = record.started_ns
        end = start + int(record.after * _NS)
        info = current_request.get()
        requested = info.model if info is not None and info.model else self.model
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "serverroom",
            "gen_ai.request.model": requested,
            "gen_ai.response.model": self.model,
            "gen_ai.usage.input_tokens": record.prompt_tokens,
            "gen_ai.usage.output_tokens": record.output_tokens,
            "gen_ai.response.finish_reasons": [record.reason],
            "serverroom.cached_tokens": record.cached_tokens,
        }
        span = self.tracer.start_span(f"chat {requested}", start_time=start, attributes=attributes)
        if record.reason == "error":
            span.set_status(Status(StatusCode.ERROR))
        parent = trace.set_span_in_context(span)
        admitted = start if record.upstream else start + int((record.waited or record.after) * _NS)
        first = start + int(record.first_after * _NS) if record.first_after is not None else end
        phases = [
            ("queue", start, admitted),
            ("prefill", admitted, max(admitted, first)),
            ("decode", max(admitted, first), end),
        ]
        for name, begin, finish in phases[record.upstream :]:  # an upstream's queue is its own
            phase = self.tracer.start_span(name, context=parent, start_time=begin)
            phase.end(end_time=max(begin, finish))
        span.end(end_time=end)


class GenerationObservers:
    """Every observer of one model's generations (metrics, traces), as one."""

    def __init__(self, *observers: GenerationObserver | None) -> None:
        self.observers = [o for o in observers if o is not None]

    def finished(self, record: GenerationRecord) -> None:
        for observer in self.observers:
            observer.finished(record)


def _instrument_db(tracer: trace.Tracer, engine: AsyncEngine) -> None:
    from sqlalchemy import event

    system = engine.dialect.name

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split(None, 1)
        span = tracer.start_span(
            f"db {words[0].upper() if words else 'statement'}",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": system, "db.query.text": statement[:2000]},
        )
        conn.info.setdefault("serverroom.spans", []).append(span)

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _end(conn: Any, *args: Any) -> None:
        spans = conn.info.get("serverroom.spans")
        if spans:
            spans.pop().end()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: Any) -> None:
        spans = context.connection.info.get("serverroom.spans") if context.connection else None
        if spans:
            span = spans.pop()
            span.set_status(Status(StatusCode.ERROR, str(context.original_exception)[:200]))
            span.end()
