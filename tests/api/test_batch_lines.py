"""Batch API lines of every endpoint run at the batch priority and are admitted at the batch
rate (fake engine and the bundled embedding model, in-process)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.catalog import ModelEntry
from serverroom.engine.base import GenerationEvent, GenerationRequest
from serverroom.engine.fake import FakeEngine
from serverroom.metering import Admission, NullTicket, Ticket
from serverroom.settings import BatchSettings
from tests.api.test_batches import MODEL, read_jsonl, sdk_for, submit, wait
from tests.conftest import fake_settings


class Recording(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.priorities: list[int] = []

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self.priorities.append(request.priority)
        async for event in super().generate(request):
            yield event


class RecordingMetering:
    def __init__(self) -> None:
        self.admitted: list[Admission] = []

    async def admit(self, admission: Admission) -> Ticket:
        self.admitted.append(admission)
        return NullTicket()


def _line(custom_id: str, url: str, body: dict[str, object]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def test_every_endpoint_runs_its_lines_at_batch_priority_and_rate(tmp_path: Path) -> None:
    engine = Recording()

    def factory(entry: ModelEntry) -> FakeEngine:
        return engine

    settings = fake_settings(tmp_path, batch=BatchSettings(poll_seconds=0.2, priority=2))
    app = create_app(settings, engine_factory=factory)
    with TestClient(app) as client:
        metering = RecordingMetering()
        app.state.context.metering = metering
        registry = app.state.context.embeddings
        embedded: list[int] = []
        plain_embed = registry.embed

        async def embed(*args: Any, priority: int = 0, **kwargs: Any) -> Any:
            embedded.append(priority)
            return await plain_embed(*args, priority=priority, **kwargs)

        registry.embed = embed
        sdk = sdk_for(client)
        messages = [{"role": "user", "content": "hi"}]
        lines = {
            "/v1/chat/completions": {"model": MODEL, "messages": messages, "max_tokens": 4},
            "/v1/completions": {"model": MODEL, "prompt": "hi", "max_tokens": 4},
            "/v1/responses": {"model": MODEL, "input": "hi", "max_output_tokens": 16},
            "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
        }
        for url, body in lines.items():
            batch = wait(sdk, submit(sdk, [_line("a", url, body)], endpoint=url).id)
            assert batch.status == "completed", batch
            assert read_jsonl(sdk, batch.output_file_id)[0]["response"]["status_code"] == 200
        assert engine.priorities == [2, 2, 2] and embedded == [2]
        assert [(a.endpoint, a.batch) for a in metering.admitted] == [(url, True) for url in lines]
