"""An engine that fails or is still loading yields envelopes, and the server keeps serving."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.catalog import ModelEntry
from serverroom.engine.base import Engine, GenerationEvent, GenerationRequest, SampledToken
from serverroom.engine.fake import FakeEngine
from tests.conftest import fake_settings

MSG = [{"role": "user", "content": "hi"}]


class BrokenEngine(FakeEngine):
    """Fails on requests whose prompt contains 'boom' (before or after the first token)."""

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        text = bytes(t for t in request.prompt if t < 256).decode(errors="replace")
        if "boom-early" in text:
            raise RuntimeError("engine exploded")
        async for event in super().generate(request):
            yield event
            if "boom-late" in text and isinstance(event, SampledToken):
                raise RuntimeError("engine exploded mid-stream")


class SlowStart(FakeEngine):
    async def start(self) -> None:
        await asyncio.sleep(0.6)
        await super().start()


def _client(tmp_path: Path, engine_cls: type[FakeEngine]) -> TestClient:
    def factory(entry: ModelEntry) -> Engine:
        return engine_cls()

    return TestClient(create_app(fake_settings(tmp_path), engine_factory=factory))


def test_engine_failure_is_500_and_server_survives(tmp_path: Path) -> None:
    with _client(tmp_path, BrokenEngine) as client:
        sdk = openai.OpenAI(
            api_key="k", base_url="http://testserver/v1", http_client=client, max_retries=0
        )
        with pytest.raises(openai.InternalServerError) as info:
            sdk.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "boom-early"}]
            )
        assert info.value.body["type"] == "server_error"  # type: ignore[index]
        assert info.value.response.headers["x-request-id"].startswith("req_")
        with pytest.raises(openai.APIError):
            for _ in sdk.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "boom-late"}], stream=True
            ):
                pass
        ok = sdk.chat.completions.create(model="gpt-4.1", messages=MSG)  # type: ignore[arg-type]
        assert ok.choices[0].message.content


def test_health_is_503_while_loading(tmp_path: Path) -> None:
    with _client(tmp_path, SlowStart) as client:
        first = client.get("/health")
        assert first.status_code == 503
        assert first.json()["status"] == "loading"
        deadline = time.monotonic() + 5
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_queue_overflow_is_503_with_retry_after(tmp_path: Path) -> None:
    from serverroom.settings import EngineSettings

    settings = fake_settings(
        tmp_path, engine=EngineSettings(kind="fake", slots=1, max_queue=0, fake_delay=0.02)
    )
    with TestClient(create_app(settings)) as client:
        body = {"model": "gpt-4.1", "messages": MSG}
        first: list[int] = []
        worker = threading.Thread(
            target=lambda: first.append(client.post("/v1/chat/completions", json=body).status_code)
        )
        worker.start()
        engine = client.app.state.context.engines._engines["smollm2-135m-instruct"]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while not engine._gate._semaphore.locked():  # wait until the only slot is taken
            assert time.monotonic() < deadline
            time.sleep(0.005)
        refused = client.post("/v1/chat/completions", json=body)
        worker.join()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "engine_overloaded"
        assert first == [200]
