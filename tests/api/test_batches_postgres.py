"""Files and a batch with a restart, on PostgreSQL (marker ``postgres``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import BatchSettings, EngineSettings
from tests.api.test_batches import chat_line, read_jsonl, sdk_for, submit, wait
from tests.conftest import fake_settings

pytestmark = pytest.mark.postgres


def test_batch_with_restart_on_postgres(tmp_path: Path, pg_url: str) -> None:
    settings = fake_settings(
        tmp_path,
        database_url=pg_url,
        engine=EngineSettings(kind="fake", fake_delay=0.03),
        batch=BatchSettings(concurrency=2, poll_seconds=0.2),
    )
    ids = [f"r{i}" for i in range(16)]
    lines = [chat_line(c) for c in ids] + [chat_line("bad", temperature=9)]
    with TestClient(create_app(settings)) as client:
        sdk = sdk_for(client)
        batch_id = submit(sdk, lines).id
        wait(sdk, batch_id, done_at_least=3)
    with TestClient(create_app(settings)) as client:
        sdk = sdk_for(client)
        batch = wait(sdk, batch_id)
        assert batch.status == "completed"
        counts = batch.request_counts
        assert counts is not None and (counts.total, counts.completed, counts.failed) == (17, 16, 1)
        output = read_jsonl(sdk, batch.output_file_id)
        assert sorted(x["custom_id"] for x in output) == sorted(ids)
        assert [x["custom_id"] for x in read_jsonl(sdk, batch.error_file_id)] == ["bad"]
        files = sdk.files.list()
        assert {f.purpose for f in files} == {"batch", "batch_output"}
        assert [f.id for f in sdk.files.list(limit=1)] == [f.id for f in files]
