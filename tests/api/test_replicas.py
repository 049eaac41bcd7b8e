"""Two replicas on one PostgreSQL database and no shared filesystem (two apps in-process, each
with its own data directory and fake engine): state, files, background responses and batches
are shared correctly."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serverroom.api.responses.repository import ResponseRepository
from serverroom.app import create_app
from serverroom.catalog import ModelEntry
from serverroom.engine.base import GenerationEvent, GenerationRequest
from serverroom.engine.fake import FakeEngine
from serverroom.principal import DEFAULT_PROJECT
from serverroom.settings import BatchSettings, EngineSettings, ReplicaSettings, Settings
from serverroom.storage.tables.batches import BatchLineRow
from serverroom.storage.tables.files import FileRow
from tests.api.test_batches import chat_line, read_jsonl, sdk_for, submit, wait

pytestmark = pytest.mark.postgres


class Counting(FakeEngine):
    def __init__(self, delay: float) -> None:
        super().__init__(delay=delay)
        self.runs = 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self.runs += 1
        async for event in super().generate(request):
            yield event


class Replica:
    """One app of the pair: its client, SDK and engine."""

    def __init__(self, stack: ExitStack, settings: Settings, delay: float) -> None:
        self.engine = Counting(delay)
        self.settings = settings
        app = create_app(settings, engine_factory=lambda entry: self._engine(entry))
        self.client = stack.enter_context(TestClient(app))
        self.sdk = sdk_for(self.client)
        self.app = app

    def _engine(self, entry: ModelEntry) -> FakeEngine:
        return self.engine


def _settings(root: Path, name: str, db_url: str) -> Settings:
    return Settings(
        data_dir=root / name,
        database_url=db_url,
        files_store="database",
        engine=EngineSettings(kind="fake"),
        batch=BatchSettings(concurrency=4, poll_seconds=0.1),
        replicas=ReplicaSettings(lease_seconds=0.6),
    )


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[Replica, Replica]]:
    with ExitStack() as stack:
        a = Replica(stack, _settings(tmp_path, "a", pg_url), delay=0.01)
        b = Replica(stack, _settings(tmp_path, "b", pg_url), delay=0.01)
        yield a, b


def test_state_and_files_made_on_one_replica_serve_on_the_other(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    first = a.sdk.responses.create(model="gpt-4.1", input="My name is Ada.", max_output_tokens=4)
    second = b.sdk.responses.create(
        model="gpt-4.1", input="Again?", previous_response_id=first.id, max_output_tokens=4
    )
    third = a.sdk.responses.create(
        model="gpt-4.1", input="Once more.", previous_response_id=second.id, max_output_tokens=4
    )
    assert b.sdk.responses.retrieve(third.id).previous_response_id == second.id
    data = bytes(range(256)) * 9000  # over two database chunks
    upload = a.sdk.files.create(file=("blob.bin", data), purpose="user_data")
    assert b.sdk.files.content(upload.id).content == data
    assert (
        not (b.settings.data_dir / "files").exists()
        and not (a.settings.data_dir / "files").exists()
    )
    b.sdk.files.delete(upload.id)
    with pytest.raises(openai.NotFoundError):
        a.sdk.files.content(upload.id)


def test_a_replica_restarting_does_not_fail_the_others_background_work(
    tmp_path: Path, pg_url: str
) -> None:
    with ExitStack() as stack:
        a = Replica(stack, _settings(tmp_path, "a", pg_url), delay=0.03)
        job = a.sdk.responses.create(
            model="gpt-4.1", input="hi", background=True, max_output_tokens=60
        )
        for _ in range(2):  # replica B starts (recovery runs) and stops, twice
            with ExitStack() as b_stack:
                b = Replica(b_stack, _settings(tmp_path, "b", pg_url), delay=0.01)
                assert b.sdk.responses.retrieve(job.id).status in ("queued", "in_progress")
        deadline = time.monotonic() + 30
        while a.sdk.responses.retrieve(job.id).status in ("queued", "in_progress"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert a.sdk.responses.retrieve(job.id).status in ("completed", "incomplete")


def test_a_dead_replicas_background_work_is_failed_in_bounded_time(
    pair: tuple[Replica, Replica],
) -> None:
    a, _ = pair
    done = a.sdk.responses.create(model="gpt-4.1", input="x", max_output_tokens=2)
    body = {**a.sdk.responses.retrieve(done.id).model_dump(mode="json"), "status": "in_progress"}
    body["id"] = "resp_orphan"
    repo = ResponseRepository(a.app.state.context.db)
    expired = int(time.time() * 1000) - 1  # a replica that stopped heartbeating
    orphan = {**body, "background": True}

    async def orphaned() -> None:
        await repo.save(DEFAULT_PROJECT, orphan, [], lease=("replica_dead", expired))

    a.client.portal.call(orphaned)  # type: ignore[union-attr]
    started = time.monotonic()
    while a.sdk.responses.retrieve("resp_orphan").status == "in_progress":
        assert time.monotonic() - started < 5, "a dead replica's response was never failed"
        time.sleep(0.05)
    failed = a.sdk.responses.retrieve("resp_orphan")
    assert failed.status == "failed" and failed.error is not None


def test_both_replicas_share_a_batch_and_run_every_line_once(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    lines = [chat_line(f"r{i}", max_tokens=3) for i in range(200)]
    batch = wait(a.sdk, submit(a.sdk, lines).id, timeout=120)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == 200
    out = read_jsonl(b.sdk, batch.output_file_id)
    assert sorted(r["custom_id"] for r in out) == sorted(f"r{i}" for i in range(200))
    assert a.engine.runs + b.engine.runs == 200  # no line ran twice
    assert a.engine.runs > 0 and b.engine.runs > 0  # both replicas worked on it

    async def owners_and_outputs() -> tuple[int, int]:
        async with a.app.state.context.db.session() as session:
            owners = select(func.count(func.distinct(BatchLineRow.claimed_by)))
            outputs = select(func.count()).where(FileRow.filename == f"{batch.id}_output.jsonl")
            return int(await session.scalar(owners) or 0), int(await session.scalar(outputs) or 0)

    owners, outputs = a.client.portal.call(owners_and_outputs)  # type: ignore[union-attr]
    assert owners == 2  # both replicas ran lines
    assert outputs == 1  # and one of them wrote the output file
