"""Multi-generation requests (several prompts, ``n``) are admitted whole or not at all, and a
failed generation takes its siblings down with it instead of leaving them running."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.engine.base import GenerationEvent, GenerationRequest, SamplingParams
from serverroom.engine.fake import FakeEngine
from serverroom.generation import Generation, Job, fold, generate
from serverroom.settings import EngineSettings
from tests.conftest import fake_settings

MSG = [{"role": "user", "content": "hi"}]


def _client(tmp_path: Path, **engine: object) -> TestClient:
    settings = fake_settings(tmp_path, engine=EngineSettings(kind="fake", **engine))  # type: ignore[arg-type]
    return TestClient(create_app(settings))


def _engine(client: TestClient) -> FakeEngine:
    engine = client.app.state.context.engines.engine("gpt-4.1")  # type: ignore[attr-defined]
    assert isinstance(engine, FakeEngine)
    return engine


def test_more_generations_than_the_engine_holds_is_a_400_naming_the_limit(
    tmp_path: Path,
) -> None:
    with _client(tmp_path, slots=2, max_queue=3) as client:
        reply = client.post(
            "/v1/completions",
            json={"model": "gpt-4.1", "prompt": ["hi"] * 1000, "max_tokens": 1},
        )
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["param"] == "prompt" and error["code"] == "invalid_value"
        assert "1000 generations" in error["message"] and "at most 5" in error["message"]
        chat = client.post(
            "/v1/chat/completions", json={"model": "gpt-4.1", "messages": MSG, "n": 6}
        )
        assert chat.status_code == 400 and chat.json()["error"]["param"] == "n"
        assert _engine(client).room() == 5  # nothing was started
        ok = client.post("/v1/completions", json={"model": "gpt-4.1", "prompt": ["a"] * 5})
        assert ok.status_code == 200 and len(ok.json()["choices"]) == 5


def test_a_request_that_does_not_fit_now_starts_nothing(tmp_path: Path) -> None:
    with _client(tmp_path, slots=2, max_queue=2, fake_delay=0.05) as client:
        engine = _engine(client)
        body = {"model": "gpt-4.1", "messages": MSG, "max_tokens": 40}
        threads = [
            threading.Thread(target=lambda: client.post("/v1/chat/completions", json=body))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while engine.room() > 2:  # both slots taken
            assert time.monotonic() < deadline
            time.sleep(0.005)
        refused = client.post(
            "/v1/completions", json={"model": "gpt-4.1", "prompt": ["a", "b", "c"]}
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "engine_overloaded"
        assert engine.room() == 2  # the refused request holds nothing
        for thread in threads:
            thread.join()
        assert engine.room() == 4


async def test_the_first_error_cancels_the_siblings() -> None:
    finished: list[int] = []
    cancelled: list[int] = []

    class OneFails(FakeEngine):
        async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
            choice = request.params.seed
            if choice == 1:
                await asyncio.sleep(0.01)
                raise RuntimeError("refused")
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.append(choice or 0)
                raise
            finished.append(choice or 0)
            async for event in super().generate(request):
                yield event

    engine = OneFails()
    jobs = [Job([1], SamplingParams(max_tokens=4, seed=i)) for i in range(3)]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="refused"):
        await fold(generate(Generation(engine, jobs), "req"))
    assert time.monotonic() - started < 1
    assert sorted(cancelled) == [0, 2] and finished == []


async def test_abandoned_work_is_billed_for_what_it_generated() -> None:
    from serverroom.api.common import billed_if_abandoned
    from serverroom.metering import Usage

    class Ticket:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}
            self.settled: list[Usage] = []

        async def settle(self, usage: Usage) -> None:
            self.settled.append(usage)

    ticket, counts = Ticket(), [0, 0]
    with pytest.raises(asyncio.CancelledError):
        async with billed_if_abandoned(ticket, 11, counts):
            counts[0], counts[1] = 5, 7
            raise asyncio.CancelledError
    assert ticket.settled == [Usage(11, 0, 12)]
    async with billed_if_abandoned(ticket, 11, counts):
        pass  # success settles elsewhere, with the full usage
    assert len(ticket.settled) == 1
