"""Background responses: queued at once, polled, cancelled, failed by a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import EngineSettings, Settings
from tests.conftest import fake_settings


def slow_settings(tmp_path: Path, delay: float = 0.05) -> Settings:
    return fake_settings(tmp_path, engine=EngineSettings(kind="fake", fake_delay=delay))


def sdk_for(client: TestClient) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
    )


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[openai.OpenAI]:
    with TestClient(create_app(slow_settings(tmp_path))) as client:
        yield sdk_for(client)


def wait_for(sdk: openai.OpenAI, response_id: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sdk.responses.retrieve(response_id).status
        if status not in ("queued", "in_progress"):
            return str(status)
        time.sleep(0.05)
    raise AssertionError("background response did not finish")


def test_background_runs_to_completion(slow: openai.OpenAI) -> None:
    started = time.monotonic()
    queued = slow.responses.create(model="gpt-4.1", input="hi", background=True)
    assert time.monotonic() - started < 2
    assert queued.status == "queued" and queued.background is True
    assert queued.output == [] and queued.usage is None
    assert slow.responses.retrieve(queued.id).status in ("queued", "in_progress")
    assert wait_for(slow, queued.id) == "completed"
    done = slow.responses.retrieve(queued.id)
    assert done.output_text and done.usage is not None and done.background is True
    with pytest.raises(openai.BadRequestError):
        slow.responses.cancel(queued.id)


def test_background_chain(slow: openai.OpenAI) -> None:
    first = slow.responses.create(model="gpt-4.1", input="one", background=True)
    wait_for(slow, first.id)
    second = slow.responses.create(
        model="gpt-4.1", input="two", previous_response_id=first.id, max_output_tokens=3
    )
    assert second.status == "incomplete"


def test_cancel(slow: openai.OpenAI) -> None:
    queued = slow.responses.create(model="gpt-4.1", input="hi", background=True)
    time.sleep(0.2)
    cancelled = slow.responses.cancel(queued.id)
    assert cancelled.status == "cancelled" and cancelled.id == queued.id
    again = slow.responses.cancel(queued.id)
    assert again.status == "cancelled"
    time.sleep(0.3)
    assert slow.responses.retrieve(queued.id).status == "cancelled"


def test_cancel_errors(slow: openai.OpenAI) -> None:
    plain = slow.responses.create(model="gpt-4.1", input="hi", max_output_tokens=2)
    with pytest.raises(openai.BadRequestError):
        slow.responses.cancel(plain.id)
    with pytest.raises(openai.NotFoundError):
        slow.responses.cancel("resp_missing")


def test_background_stream_is_stored(slow: openai.OpenAI) -> None:
    with slow.responses.stream(model="gpt-4.1", input="hi", background=True) as stream:
        final = stream.get_final_response()
    assert final.background is True
    stored = slow.responses.retrieve(final.id)
    assert stored.status == "completed" and stored.output_text == final.output_text


def test_background_stream_outlives_its_client(slow: openai.OpenAI) -> None:
    """A streamed background response keeps running (and is stored) after a disconnect."""
    stream = slow.responses.create(model="gpt-4.1", input="hi", background=True, stream=True)
    response_id = None
    for event in stream:
        if event.type == "response.created":
            response_id = event.response.id
        if event.type == "response.output_text.delta":
            break
    stream.close()
    assert response_id is not None
    assert wait_for(slow, response_id) == "completed"
    assert slow.responses.retrieve(response_id).output_text


def test_cancel_ends_a_streamed_background_response(slow: openai.OpenAI) -> None:
    stream = slow.responses.create(model="gpt-4.1", input="hi", background=True, stream=True)
    kinds: list[str] = []
    response_id = ""
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.created":
            response_id = event.response.id
        if event.type == "response.output_text.delta" and len(kinds) == 5:
            assert slow.responses.cancel(response_id).status == "cancelled"
    assert "response.completed" not in kinds
    assert slow.responses.retrieve(response_id).status == "cancelled"


def test_background_needs_store(slow: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        slow.responses.create(model="gpt-4.1", input="hi", background=True, store=False)
    assert info.value.param == "background"


def test_restart_fails_unfinished(tmp_path: Path) -> None:
    settings = slow_settings(tmp_path, delay=0.5)
    with TestClient(create_app(settings)) as client:
        queued = sdk_for(client).responses.create(model="gpt-4.1", input="hi", background=True)
        finished = sdk_for(client).responses.create(model="gpt-4.1", input="x", max_output_tokens=1)
    with TestClient(create_app(settings)) as client:
        sdk = sdk_for(client)
        failed = sdk.responses.retrieve(queued.id)
        assert failed.status == "failed"
        assert failed.error is not None and failed.error.code == "server_error"
        assert failed.error.message == "The server restarted before the response completed."
        assert sdk.responses.retrieve(finished.id).status == "incomplete"


def test_resume_background_stream(slow: openai.OpenAI) -> None:
    job = slow.responses.create(model="gpt-4.1", input="hi", background=True)
    time.sleep(0.3)
    events = list(slow.responses.retrieve(job.id, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.id == job.id and final.output_text == slow.responses.retrieve(job.id).output_text
    tail = list(slow.responses.retrieve(job.id, stream=True, starting_after=5))
    assert [e.sequence_number for e in tail] == list(range(6, len(events)))


def test_stream_a_finished_response(sdk: openai.OpenAI) -> None:
    done = sdk.responses.create(model="gpt-4.1", input="hi")
    events = list(sdk.responses.retrieve(done.id, stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(9))
    assert events[4].delta == done.output_text  # type: ignore[union-attr]
    assert events[-1].response.model_dump() == done.model_dump()  # type: ignore[union-attr]


def test_chain_onto_running_response_is_400(slow: openai.OpenAI) -> None:
    job = slow.responses.create(model="gpt-4.1", input="hi", background=True)
    with pytest.raises(openai.BadRequestError) as info:
        slow.responses.create(model="gpt-4.1", input="x", previous_response_id=job.id)
    assert info.value.param == "previous_response_id"
    slow.responses.cancel(job.id)
