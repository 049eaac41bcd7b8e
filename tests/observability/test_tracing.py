"""OpenTelemetry spans, captured with the SDK's in-memory exporter: a request is a server span
with its ``x-request-id``; its generation a ``chat <model>`` span with the GenAI conventions'
attributes and queue / prefill / decode phases; database statements are ``db`` spans; a
streamed response keeps its spans in the request's trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serverroom.app import create_app
from serverroom.engine.base import GenerationRecord
from serverroom.observability.tracing import Tracing
from serverroom.settings import TracingSettings
from tests.conftest import fake_settings

MODEL = "gpt-4.1-mini"


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[tuple[TestClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(fake_settings(tmp_path), tracer_provider=provider)) as client:
        exporter.clear()  # start-up's database work
        yield client, exporter


def _sdk(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
    )


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_a_chat_is_a_server_span_with_a_generation(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    raw = _sdk(client).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=6
    )
    completion = raw.parse()
    spans = list(exporter.get_finished_spans())
    server = _one(spans, "POST /v1/chat/completions")
    assert server.attributes is not None and server.context is not None
    assert server.attributes["serverroom.request_id"] == raw.headers["x-request-id"]
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["gen_ai.request.model"] == MODEL
    chat = _one(spans, f"chat {MODEL}")
    assert chat.parent is not None and chat.parent.span_id == server.context.span_id
    assert chat.attributes is not None and completion.usage is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert chat.attributes["gen_ai.usage.output_tokens"] >= completion.usage.completion_tokens
    assert tuple(chat.attributes["gen_ai.response.finish_reasons"]) in (("stop",), ("length",))
    assert chat.context is not None
    phases = [s for s in spans if s.parent is not None and s.parent.span_id == chat.context.span_id]
    assert [p.name for p in sorted(phases, key=lambda s: s.start_time or 0)] == [
        "queue",
        "prefill",
        "decode",
    ]
    for phase in phases:
        assert chat.start_time <= phase.start_time <= phase.end_time <= chat.end_time  # type: ignore[operator]


def test_a_streamed_response_keeps_its_trace(
    traced: tuple[TestClient, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    list(
        _sdk(client).responses.create(model=MODEL, input="hello", stream=True, max_output_tokens=6)
    )
    spans = list(exporter.get_finished_spans())
    server = _one(spans, "POST /v1/responses")
    chat = _one(spans, f"chat {MODEL}")
    assert server.context is not None and chat.context is not None
    assert chat.context.trace_id == server.context.trace_id
    # the stored response's writes are database spans in the same trace
    trace_id = server.context.trace_id
    db = [s for s in spans if s.name.startswith("db ") and s.context.trace_id == trace_id]  # type: ignore[union-attr]
    assert any(s.name == "db INSERT" for s in db)
    assert all(s.attributes and s.attributes["db.system.name"] == "sqlite" for s in db)


def test_tracing_is_off_unless_asked(tmp_path: Path) -> None:
    app = create_app(fake_settings(tmp_path))
    assert app.state.context.tracing.tracer is None


def test_an_upstream_generation_has_no_queue_of_ours() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = Tracing(TracingSettings(), provider).observer("gpt-4o")
    assert observer is not None
    record = GenerationRecord(
        reason="stop",
        prompt_tokens=7,
        cached_tokens=0,
        output_tokens=3,
        waited=None,
        first_after=0.2,
        after=0.5,
        started_ns=time.time_ns(),
        upstream=True,
    )
    observer.finished(record)
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["chat gpt-4o", "decode", "prefill"]
    prefill = _one(list(spans), "prefill")
    chat = _one(list(spans), "chat gpt-4o")
    assert prefill.start_time == chat.start_time
    assert prefill.end_time is not None and chat.start_time is not None
    assert abs(prefill.end_time - chat.start_time - 200_000_000) < 1_000
