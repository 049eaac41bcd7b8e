"""Two real ``serverroom serve`` replicas on the local PostgreSQL and Redis, file bytes in the
database and no shared directory, driven by the official SDK: state moves between them, a
restart of one does not fail the other's background work, and both share one batch with every
line run exactly once (counted in the usage ledger)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import openai
import psycopg
import pytest

from tests.conftest import fresh_postgres_database
from tests.live.server import LiveServer, chat_batch_lines

pytestmark = [pytest.mark.live, pytest.mark.postgres]
MODEL = "gpt-4.1-mini"


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, LiveServer, str]]:
    base = tmp_path_factory.mktemp("replicas")
    with fresh_postgres_database("sr_replicas") as url:
        env = {
            "SERVERROOM_DATABASE_URL": url,
            "SERVERROOM_REDIS_URL": "redis://127.0.0.1:6379/0",
            "SERVERROOM_FILES_STORE": "database",
            "SERVERROOM_REPLICAS__LEASE_SECONDS": "3",
            "SERVERROOM_BATCH__POLL_SECONDS": "0.2",
            "SERVERROOM_BATCH__CONCURRENCY": "4",
        }
        servers = []
        for name in ("a", "b"):
            (base / name).mkdir()
            servers.append(LiveServer(base / name, env=env, args=["--engine.slot_context", "2048"]))
        try:
            for server in servers:
                server.start()
            yield servers[0], servers[1], url
        finally:
            for server in servers:
                server.stop()


def _sdk(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def test_a_chain_started_on_one_replica_continues_on_the_other(
    replicas: tuple[LiveServer, LiveServer, str],
) -> None:
    a, b, _ = replicas
    first = _sdk(a).responses.create(model=MODEL, input="My name is Ada.", max_output_tokens=8)
    second = _sdk(b).responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=8
    )
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens  # B read A's turn
    assert _sdk(a).responses.retrieve(second.id).previous_response_id == first.id
    upload = _sdk(a).files.create(file=("notes.txt", b"shared bytes"), purpose="user_data")
    assert _sdk(b).files.content(upload.id).content == b"shared bytes"


def test_restarting_one_replica_does_not_fail_the_others_background_response(
    replicas: tuple[LiveServer, LiveServer, str],
) -> None:
    a, b, _ = replicas
    job = _sdk(a).responses.create(
        model=MODEL,
        input="Write a long story about a lighthouse.",
        background=True,
        max_output_tokens=400,
    )
    b.restart()  # B's start-up recovery runs while A's response is in flight
    assert _sdk(b).responses.retrieve(job.id).status in (
        "queued",
        "in_progress",
        "completed",
        "incomplete",
    )
    deadline = time.monotonic() + 120
    while (status := _sdk(b).responses.retrieve(job.id).status) in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status in ("completed", "incomplete"), status


def test_both_replicas_run_one_batch_with_every_line_exactly_once(
    replicas: tuple[LiveServer, LiveServer, str],
) -> None:
    a, b, url = replicas
    lines = chat_batch_lines(MODEL, 200, max_tokens=1)
    client = _sdk(a)
    upload = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 600
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
        batch = _sdk(b).batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id
    out = [json.loads(x) for x in _sdk(b).files.content(batch.output_file_id).text.splitlines()]
    assert sorted(r["custom_id"] for r in out) == sorted(f"r{i}" for i in range(200))
    with psycopg.connect(url) as conn:
        runs = conn.execute("SELECT count(*) FROM usage_ledger WHERE batch").fetchone()
        owners = conn.execute(
            "SELECT count(DISTINCT claimed_by) FROM batch_lines WHERE batch_id = %s", (batch.id,)
        ).fetchone()
    assert runs is not None and runs[0] == 200  # each line billed once: it ran once
    assert owners is not None and owners[0] == 2  # both replicas ran lines
