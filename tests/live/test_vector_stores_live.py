"""Vector stores on a real ``serverroom serve`` with the bundled embedding model, driven by the
official SDK: ``upload_and_poll``, search with the right document first, and a server killed
while it ingests, whose files are finished after the restart."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.api.test_vector_stores import DOCS
from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("vector-stores"),
        env={"SERVERROOM_REPLICAS__LEASE_SECONDS": "2"},
        args=["--engine.slot_context", "2048"],
    )
    live.start()
    yield live
    live.stop()


def _sdk(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=2)


def test_upload_and_poll_then_search(server: LiveServer) -> None:
    sdk = _sdk(server)
    vs = sdk.vector_stores.create(name="live")
    for name, text in DOCS.items():
        attached = sdk.vector_stores.files.upload_and_poll(
            vector_store_id=vs.id, file=(name, text.encode())
        )
        assert attached.status == "completed", attached.last_error
    page = sdk.vector_stores.search(vs.id, query="why do oceans have tides", max_num_results=2)
    assert page.data[0].filename == "tides.html"
    assert sdk.vector_stores.retrieve(vs.id).file_counts.completed == len(DOCS)


def test_file_search_through_responses(server: LiveServer) -> None:
    sdk = _sdk(server)
    vs = sdk.vector_stores.create(name="grounding")
    for name, text in DOCS.items():
        sdk.vector_stores.files.upload_and_poll(vector_store_id=vs.id, file=(name, text.encode()))
    tool = {"type": "file_search", "vector_store_ids": [vs.id], "max_num_results": 2}
    response = sdk.responses.create(
        model="gpt-4.1-mini",
        input="What pulls the oceans to make tides?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},
        include=["file_search_call.results"],
        max_output_tokens=300,
    )
    call, message = response.output[0], response.output[-1]
    assert call.type == "file_search_call" and call.status == "completed" and call.queries
    assert call.results and call.results[0].filename == "tides.html", call
    assert message.type == "message" and message.content[0].type == "output_text"
    cited = message.content[0].annotations
    assert cited and cited[0].type == "file_citation" and cited[0].filename == "tides.html"
    with sdk.responses.stream(
        model="gpt-4.1-mini",
        input="How is bread baked?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},
        max_output_tokens=300,
    ) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert "response.file_search_call.completed" in kinds
    # The answer may use up max_output_tokens (a small model rambles): incomplete, not failed.
    assert kinds[-1] in ("response.completed", "response.incomplete")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].type == "file_search_call" and final.output[0].results is None
    assert final.output[-1].type == "message"


def test_ingestion_killed_midway_resumes_after_restart(server: LiveServer, tmp_path: Path) -> None:
    sdk = _sdk(server)
    long_text = "\n\n".join(f"Paragraph {i} about sailing boats and harbours." for i in range(1500))
    ids = [
        sdk.files.create(file=(f"long{i}.txt", long_text.encode()), purpose="assistants").id
        for i in range(6)
    ]
    vs = sdk.vector_stores.create(name="interrupted")
    batch = sdk.vector_stores.file_batches.create(vector_store_id=vs.id, file_ids=ids)
    deadline = time.monotonic() + 60
    while sdk.vector_stores.retrieve(vs.id).file_counts.completed < 1:  # some done, not all
        assert time.monotonic() < deadline
        time.sleep(0.05)
    counts = sdk.vector_stores.retrieve(vs.id).file_counts
    assert counts.in_progress > 0, "ingestion finished before the kill: make the files longer"
    server.stop(signal.SIGKILL)
    server.start()
    done = sdk.vector_stores.file_batches.poll(batch.id, vector_store_id=vs.id)
    assert done.status == "completed" and done.file_counts.completed == len(ids)
    for file_id in ids:  # each file's chunks were stored once, not twice
        parts = list(sdk.vector_stores.files.content(file_id=file_id, vector_store_id=vs.id))
        assert len(parts) == len({p.text for p in parts}) > 1
