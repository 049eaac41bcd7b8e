"""Batch API mechanics through the official SDK on the fake chat engine."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import Batch

from serverroom.app import create_app
from serverroom.settings import BatchSettings, EngineSettings, Settings
from tests.conftest import fake_settings

MODEL = "gpt-4.1-mini"
DONE = ("completed", "failed", "cancelled", "expired")


def chat_line(custom_id: str, text: str = "hi", **body: Any) -> str:
    request = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 8}
    request.update(body)
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": request}
    )


def slow_settings(tmp_path: Path, delay: float = 0.05) -> Settings:
    return fake_settings(
        tmp_path,
        engine=EngineSettings(kind="fake", fake_delay=delay),
        batch=BatchSettings(concurrency=2, poll_seconds=0.2),
    )


def sdk_for(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
    )


def submit(
    sdk: openai.OpenAI, lines: list[str], endpoint: str = "/v1/chat/completions", **extra: Any
) -> Batch:
    upload = sdk.files.create(
        file=("input.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch"
    )
    return sdk.batches.create(
        input_file_id=upload.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **extra,
    )


def wait(
    sdk: openai.OpenAI,
    batch_id: str,
    until: tuple[str, ...] = DONE,
    timeout: float = 60.0,
    done_at_least: int | None = None,
) -> Batch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = sdk.batches.retrieve(batch_id)
        counts = batch.request_counts
        if done_at_least is not None and counts is not None:
            if counts.completed + counts.failed >= done_at_least:
                return batch
        elif batch.status in until:
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still {sdk.batches.retrieve(batch_id).status}")


def read_jsonl(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in sdk.files.content(file_id).text.splitlines() if x.strip()]


@pytest.fixture
def fast(tmp_path: Path) -> Iterator[openai.OpenAI]:
    settings = fake_settings(tmp_path, batch=BatchSettings(poll_seconds=0.2))
    with TestClient(create_app(settings)) as client:
        yield sdk_for(client)


def test_batch_of_chat_lines_with_bad_lines(fast: openai.OpenAI) -> None:
    good = [chat_line(f"req-{i}", f"question {i}") for i in range(50)]
    bad = [
        chat_line("bad-temperature", temperature=5),
        json.dumps(
            {
                "custom_id": "bad-missing",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": MODEL},
            }
        ),
        chat_line("bad-context", "x" * 5000, max_tokens=4096),
    ]
    created = submit(fast, good[:25] + bad + good[25:], metadata={"job": "nightly"})
    assert created.status == "validating"
    assert created.metadata == {"job": "nightly"}
    batch = wait(fast, created.id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None
    assert (
        batch.request_counts.total,
        batch.request_counts.completed,
        batch.request_counts.failed,
    ) == (53, 50, 3)
    for stamp in ("in_progress_at", "finalizing_at", "completed_at"):
        assert getattr(batch, stamp) is not None
    assert batch.model == MODEL
    assert batch.usage is not None and batch.usage.output_tokens > 0
    output = read_jsonl(fast, batch.output_file_id)
    errors = read_jsonl(fast, batch.error_file_id)
    assert sorted(x["custom_id"] for x in output) == sorted(f"req-{i}" for i in range(50))
    for line in output:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["object"] == "chat.completion"
    by_id = {x["custom_id"]: x for x in errors}
    assert set(by_id) == {"bad-temperature", "bad-missing", "bad-context"}
    assert by_id["bad-temperature"]["response"]["status_code"] == 400
    assert by_id["bad-temperature"]["response"]["body"]["error"]["param"] == "temperature"
    assert by_id["bad-missing"]["response"]["body"]["error"]["param"] == "messages"
    assert by_id["bad-context"]["response"]["body"]["error"]["code"] == "context_length_exceeded"
    out_file = fast.files.retrieve(batch.output_file_id or "")
    assert out_file.purpose == "batch_output"
    assert [b.id for b in fast.batches.list()] == [created.id]


def test_file_level_errors_fail_the_batch(fast: openai.OpenAI) -> None:
    lines = [
        chat_line("a"),
        "{not json",
        chat_line("a"),
        json.dumps(
            {"custom_id": "u", "method": "POST", "url": "/v1/completions", "body": {"model": MODEL}}
        ),
        chat_line("m", model="gpt-4o"),
    ]
    batch = wait(fast, submit(fast, lines).id)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data is not None
    got = [(e.code, e.line) for e in batch.errors.data]
    assert got == [
        ("invalid_json_line", 2),
        ("duplicate_custom_id", 3),
        ("invalid_url", 4),
        ("mismatched_model", 5),
    ]
    empty = wait(fast, submit(fast, [""]).id)
    assert empty.status == "failed"


def test_an_over_long_custom_id_is_a_line_error_not_sql(fast: openai.OpenAI) -> None:
    batch = wait(fast, submit(fast, [chat_line("c" * 600), chat_line("ok")]).id)
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data
    error = batch.errors.data[0]
    assert (error.code, error.line, error.param) == ("invalid_value", 1, "custom_id")
    assert "at most 512 characters" in (error.message or "")
    assert "INSERT" not in (error.message or "")


def test_create_validation(fast: openai.OpenAI) -> None:
    upload = fast.files.create(file=("x.jsonl", chat_line("a").encode()), purpose="user_data")
    with pytest.raises(openai.BadRequestError):
        fast.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        fast.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError):
        fast.batches.create(
            input_file_id=upload.id, endpoint="/v1/moderations", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError):
        fast.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="1h"
        )  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        fast.batches.retrieve("batch_missing")


def test_completions_responses_and_embeddings_endpoints(fast: openai.OpenAI) -> None:
    lines = [
        json.dumps(
            {
                "custom_id": f"c{i}",
                "method": "POST",
                "url": "/v1/completions",
                "body": {"model": MODEL, "prompt": f"Once {i}", "max_tokens": 4},
            }
        )
        for i in range(3)
    ]
    batch = wait(fast, submit(fast, lines, endpoint="/v1/completions").id)
    assert batch.status == "completed"
    assert {x["response"]["body"]["object"] for x in read_jsonl(fast, batch.output_file_id)} == {
        "text_completion"
    }
    lines = [
        json.dumps(
            {
                "custom_id": f"p{i}",
                "method": "POST",
                "url": "/v1/responses",
                "body": {"model": MODEL, "input": f"Hello {i}", "max_output_tokens": 16},
            }
        )
        for i in range(2)
    ]
    batch = wait(fast, submit(fast, lines, endpoint="/v1/responses").id)
    assert batch.status == "completed", batch
    assert {x["response"]["body"]["object"] for x in read_jsonl(fast, batch.output_file_id)} == {
        "response"
    }
    lines = [
        json.dumps(
            {
                "custom_id": f"e{i}",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": f"text {i}"},
            }
        )
        for i in range(4)
    ]
    batch = wait(fast, submit(fast, lines, endpoint="/v1/embeddings").id)
    assert batch.status == "completed" and batch.request_counts.completed == 4  # type: ignore[union-attr]
    body = read_jsonl(fast, batch.output_file_id)[0]["response"]["body"]
    assert len(body["data"][0]["embedding"]) == 384


def test_cancel_mid_batch(tmp_path: Path) -> None:
    with TestClient(create_app(slow_settings(tmp_path))) as client:
        sdk = sdk_for(client)
        created = submit(sdk, [chat_line(f"r{i}") for i in range(30)])
        wait(sdk, created.id, done_at_least=2)
        cancelling = sdk.batches.cancel(created.id)
        assert cancelling.status in ("cancelling", "cancelled")
        batch = wait(sdk, created.id, until=("cancelled",))
        assert batch.cancelled_at is not None and batch.cancelling_at is not None
        counts = batch.request_counts
        assert counts is not None and 2 <= counts.completed < 30
        output = read_jsonl(sdk, batch.output_file_id)
        assert len(output) == counts.completed
        assert sdk.batches.cancel(created.id).status == "cancelled"
        time.sleep(0.5)  # nothing more runs after the cancel
        assert sdk.batches.retrieve(created.id).request_counts.completed == counts.completed  # type: ignore[union-attr]


def _finished_lines(db: Path, batch_id: str) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT custom_id, result FROM batch_lines WHERE batch_id = ? AND status != 'pending'",
            (batch_id,),
        ).fetchall()
    return {custom_id: json.loads(result)["id"] for custom_id, result in rows}


def test_restart_mid_batch_loses_and_repeats_nothing(tmp_path: Path) -> None:
    settings = slow_settings(tmp_path)
    ids = [f"r{i}" for i in range(24)]
    with TestClient(create_app(settings)) as client:
        sdk = sdk_for(client)
        batch_id = submit(sdk, [chat_line(c) for c in ids]).id
        wait(sdk, batch_id, done_at_least=4)
    before = _finished_lines(tmp_path / "serverroom.db", batch_id)  # app stopped mid-batch
    assert 4 <= len(before) < len(ids)
    with TestClient(create_app(settings)) as client:
        sdk = sdk_for(client)
        batch = wait(sdk, batch_id)
        assert batch.status == "completed"
        assert batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (24, 24)
        output = read_jsonl(sdk, batch.output_file_id)
    assert sorted(x["custom_id"] for x in output) == sorted(ids)  # each line exactly once
    after = {x["custom_id"]: x["id"] for x in output}
    assert all(after[c] == rid for c, rid in before.items())  # finished lines not redone
    print(f"\nrestart: {len(before)} lines done before the restart, {len(ids)} after")


def test_interactive_latency_while_batch_runs(tmp_path: Path) -> None:
    with TestClient(create_app(slow_settings(tmp_path, delay=0.02))) as client:
        sdk = sdk_for(client)

        def ask() -> float:
            start = time.perf_counter()
            sdk.chat.completions.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "ping"}]
            )
            return time.perf_counter() - start

        idle = [ask() for _ in range(5)]
        batch_id = submit(sdk, [chat_line(f"r{i}", max_tokens=16) for i in range(40)]).id
        wait(sdk, batch_id, done_at_least=2)
        busy = [ask() for _ in range(5)]
        assert sdk.batches.retrieve(batch_id).status == "in_progress"
        print(
            f"\ninteractive latency (fake engine, 8 tokens at 20 ms): idle median"
            f" {statistics.median(idle) * 1000:.0f} ms, during batch median"
            f" {statistics.median(busy) * 1000:.0f} ms"
        )
        sdk.batches.cancel(batch_id)
        wait(sdk, batch_id, until=("cancelled",))


def test_expired_batch_reports_unfinished_lines(tmp_path: Path) -> None:
    with TestClient(create_app(slow_settings(tmp_path))) as client:
        sdk = sdk_for(client)
        batch_id = submit(sdk, [chat_line(f"r{i}") for i in range(30)]).id
        wait(sdk, batch_id, done_at_least=2)
        with sqlite3.connect(tmp_path / "serverroom.db") as conn:  # the 24 h window has passed
            conn.execute("UPDATE batches SET expires_at = 0 WHERE id = ?", (batch_id,))
        batch = wait(sdk, batch_id, until=("expired",))
        counts = batch.request_counts
        assert batch.expired_at is not None and counts is not None
        assert counts.completed + counts.failed == counts.total == 30
        errors = read_jsonl(sdk, batch.error_file_id)
        assert len(errors) == counts.failed > 0
        assert {e["error"]["code"] for e in errors} == {"batch_expired"}
        assert all(e["response"] is None for e in errors)
        assert len(read_jsonl(sdk, batch.output_file_id)) == counts.completed


def test_auto_concurrency_runs_a_line_per_engine_slot() -> None:
    """``batch.concurrency = auto``: one line in flight per slot of the model's engine (its
    scheduler keeps one free for interactive requests); a set number is kept as set."""
    from types import SimpleNamespace

    from serverroom.api.batches.worker import AUTO_OTHER, BatchWorker
    from serverroom.engine.fake import FakeEngine

    engines = {"gpt-4.1": FakeEngine(slots=6)}

    def engine(model: str) -> FakeEngine:
        return engines[model]  # an unknown model raises, as the catalog does

    worker = BatchWorker.__new__(BatchWorker)
    worker.ctx = SimpleNamespace(engines=SimpleNamespace(engine=engine))  # type: ignore[assignment]
    worker.settings = BatchSettings()
    assert worker.settings.concurrency == "auto"
    assert worker._concurrency(SimpleNamespace(model="gpt-4.1")) == 6  # type: ignore[arg-type]
    assert worker._concurrency(SimpleNamespace(model="upstream-x")) == AUTO_OTHER  # type: ignore[arg-type]
    worker.settings = BatchSettings(concurrency=3)
    assert worker._concurrency(SimpleNamespace(model="gpt-4.1")) == 3  # type: ignore[arg-type]
