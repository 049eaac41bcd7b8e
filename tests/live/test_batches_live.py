"""Batch API, Files and Embeddings against a real server with the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live
MODEL = "gpt-4.1-mini"


def chat_lines(n: int, prefix: str = "r") -> list[str]:
    return [
        json.dumps(
            {
                "custom_id": f"{prefix}{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"Say a color. ({i})"}],
                },
            }
        )
        for i in range(n)
    ]


def run_batch(client: openai.OpenAI, lines: list[str], timeout: float = 240.0) -> str:
    upload = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id


def wait(
    client: openai.OpenAI, batch_id: str, timeout: float = 240.0, done_at_least: int | None = None
) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        counts = batch.request_counts
        if done_at_least is not None and counts and counts.completed >= done_at_least:
            return batch
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish")


def ask(client: openai.OpenAI) -> float:
    start = time.perf_counter()
    client.chat.completions.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Say hi."}]
    )
    return time.perf_counter() - start


def test_small_real_batch(live_client: openai.OpenAI) -> None:
    idle = sorted(ask(live_client) for _ in range(3))[1]
    batch_id = run_batch(live_client, chat_lines(6))
    busy = sorted(ask(live_client) for _ in range(3))[1]
    running = live_client.batches.retrieve(batch_id).status
    print(
        f"\nlive interactive latency (16 tokens, median of 3): idle {idle * 1000:.0f} ms,"
        f" while the batch runs {busy * 1000:.0f} ms (batch now {running})"
    )
    batch = wait(live_client, batch_id)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == 6
    assert batch.output_file_id is not None
    output = [
        json.loads(x) for x in live_client.files.content(batch.output_file_id).text.splitlines()
    ]
    assert sorted(x["custom_id"] for x in output) == [f"r{i}" for i in range(6)]
    for line in output:
        body = line["response"]["body"]
        assert body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] <= 16


def test_embeddings_live(live_client: openai.OpenAI) -> None:
    result = live_client.embeddings.create(
        model="text-embedding-3-small",
        input=["A cat sleeps on the sofa.", "A kitten naps on the couch.", "Stock prices fell."],
    )
    assert [len(d.embedding) for d in result.data] == [384, 384, 384]
    a, b, c = (d.embedding for d in result.data)
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)


def test_cli_submit_watch(live_env: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text("\n".join(chat_lines(3, "cli")) + "\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "serverroom",
            "batch",
            "submit",
            str(source),
            "--endpoint",
            "/v1/chat/completions",
            "--watch",
            "--poll",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = (tmp_path / "jobs.output.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["custom_id"] for x in lines) == ["cli0", "cli1", "cli2"]


def test_restart_resumes_batch(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, env={"SERVERROOM_BATCH__CONCURRENCY": "1"})
    server.start()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        batch_id = run_batch(client, chat_lines(12))
        wait(client, batch_id, done_at_least=2)
        server.restart()
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        batch = wait(client, batch_id)
        assert batch.status == "completed", batch
        assert batch.request_counts is not None and batch.request_counts.completed == 12
        output = client.files.content(batch.output_file_id or "").text.splitlines()
        assert sorted(json.loads(x)["custom_id"] for x in output) == sorted(
            f"r{i}" for i in range(12)
        )
    finally:
        server.stop()
