"""Upstream models, live: a serverroom in front of a pool of two real OpenAI-compatible
upstreams (two more ``serverroom serve`` processes with the bundled model), driven by the
official SDK; one member killed and restarted; upstreams that misbehave on purpose."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.api.test_vector_stores import DOCS
from tests.live.broken_upstream import BrokenUpstream
from tests.live.server import LiveServer, chat_batch_lines

pytestmark = pytest.mark.live
LOCAL = "smollm2-135m-instruct"
BROKEN = ("bad-json", "not-sse", "cut", "hang", "fail-500", "refuse-400")


def _catalog(members: list[LiveServer], broken: BrokenUpstream) -> str:
    urls = json.dumps([m.base_url for m in members])
    out = f"""
[[model]]
id = "remote-smol"
backend = "upstream"
base_urls = {urls}
upstream_model = "{LOCAL}"
context_length = 8192
default_max_output_tokens = 64
health_interval = 0.5
connect_timeout = 2
read_timeout = 120
max_failures = 1
pricing = {{ input = 1.0, output = 2.0 }}

[[model]]
id = "gpt-4.1"
alias_of = "remote-smol"
pricing = {{ input = 2.0, cached_input = 0.5, output = 8.0 }}

[[model]]
id = "remote-embed"
backend = "upstream"
kind = "embedding"
base_urls = {urls}
upstream_model = "text-embedding-3-small"

# Vector stores embed with text-embedding-3-small: here the members' (upstream embeddings).
[[model]]
id = "text-embedding-3-small"
backend = "upstream"
kind = "embedding"
base_urls = {urls}
upstream_model = "text-embedding-3-small"
"""
    for mode in BROKEN:
        out += f"""
[[model]]
id = "broken-{mode}"
backend = "upstream"
base_urls = ["{broken.base_url}"]
upstream_model = "{mode}"
read_timeout = 2
health_interval = 60
"""
    return out


@pytest.fixture(scope="module")
def pool(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, list[LiveServer], BrokenUpstream]]:
    base = tmp_path_factory.mktemp("upstream")
    args = ["--engine.slot_context", "2048"]
    members = [LiveServer(base / f"member{i}", args=args) for i in range(2)]
    broken = BrokenUpstream()
    for path in (base / "member0", base / "member1", base / "front"):
        path.mkdir()
    catalog = base / "front" / "models.toml"
    catalog.write_text(_catalog(members, broken))
    env = {"SERVERROOM_CATALOG_FILE": str(catalog), "SERVERROOM_DEFAULT_MODEL": "remote-smol"}
    front = LiveServer(base / "front", env=env)
    broken.start()
    started: list[LiveServer] = []
    try:
        for server in (*members, front):
            server.start()
            started.append(server)
        yield front, members, broken
    finally:
        for server in started:
            server.stop()
        broken.stop()


def _client(front: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=front.base_url, api_key=front.api_key, max_retries=0)


def _members_of(front: LiveServer, model: str) -> list[dict[str, object]]:
    health = httpx.get(f"{front.root_url}/health", timeout=5).json()
    members: list[dict[str, object]] = health["upstreams"][model]
    return members


def _members(front: LiveServer) -> list[dict[str, object]]:
    health = httpx.get(f"{front.root_url}/health", timeout=5).json()
    members: list[dict[str, object]] = health["upstreams"]["remote-smol"]
    return members


def test_seed_snippets_through_the_pool(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, _, _ = pool
    client = _client(front)
    chat = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert chat.model == "gpt-4.1" and chat.choices[0].message.content
    assert chat.usage is not None and chat.usage.completion_tokens > 0
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    first = client.responses.create(model="gpt-4.1", input="My name is Ada.", max_output_tokens=16)
    second = client.responses.create(
        model="gpt-4.1",
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=16,
    )
    third = client.responses.create(
        model="gpt-4.1", input="Say it again.", previous_response_id=second.id, max_output_tokens=16
    )
    sizes = [r.usage.input_tokens for r in (first, second, third) if r.usage is not None]
    assert len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]  # each turn carries the chain
    items = client.responses.input_items.list(third.id)
    assert items.data[0].type == "message"
    with client.responses.stream(
        model="gpt-4.1", input="Name a fruit.", max_output_tokens=8
    ) as stream:
        kinds = [event.type for event in stream]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "response.output_text.delta" in kinds
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")


def test_usage_is_the_upstreams_own_count(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, members, _ = pool
    messages = [{"role": "user", "content": "How many tokens is this prompt?"}]
    through = _client(front).chat.completions.create(
        model="gpt-4.1", messages=messages, max_tokens=1
    )
    direct = _client(members[0]).chat.completions.create(
        model=LOCAL, messages=messages, max_tokens=1
    )
    assert through.usage is not None and direct.usage is not None
    assert through.usage.prompt_tokens == direct.usage.prompt_tokens


def test_tools_and_schemas_through_the_pool(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, _, _ = pool
    client = _client(front)
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    chat = client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": params}}],
        tool_choice="required",
        max_tokens=300,
    )
    call = chat.choices[0].message.tool_calls
    assert chat.choices[0].finish_reason == "tool_calls" and call
    assert call[0].function.name == "get_weather" and "city" in json.loads(
        call[0].function.arguments
    )
    tool = {"type": "function", "name": "get_weather", "parameters": params}
    asked = client.responses.create(
        model="gpt-4.1",
        input="Weather in Paris?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=300,
    )
    assert [item.type for item in asked.output] == ["function_call"]
    call_id = asked.output[0].call_id  # type: ignore[union-attr]
    answered = client.responses.create(
        model="gpt-4.1",
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call_id, "output": "sunny"}],
        max_output_tokens=16,
    )
    assert answered.output[0].type == "message"
    schema = {
        "type": "object",
        "properties": {"sunny": {"type": "boolean"}},
        "required": ["sunny"],
        "additionalProperties": False,
    }
    shaped = client.responses.create(
        model="gpt-4.1",
        input="Is it sunny? Answer in JSON.",
        text={"format": {"type": "json_schema", "name": "w", "schema": schema, "strict": True}},
        max_output_tokens=32,
    )
    assert isinstance(json.loads(shaped.output_text)["sunny"], bool)


def test_embeddings_and_a_batch_through_the_pool(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, _, _ = pool
    client = _client(front)
    vectors = client.embeddings.create(model="remote-embed", input=["a cat", "a dog"])
    assert vectors.model == "remote-embed" and len(vectors.data[0].embedding) == 384
    assert vectors.usage.prompt_tokens > 0
    lines = chat_batch_lines("gpt-4.1", 4, max_tokens=8)
    upload = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 120
    while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id
    out = [
        json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()
    ]
    assert sorted(r["custom_id"] for r in out) == [f"r{i}" for i in range(4)]
    assert all(r["response"]["status_code"] == 200 for r in out)


def test_a_killed_member_fails_over_and_comes_back(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, members, _ = pool
    client = _client(front)
    members[1].stop()
    try:
        for i in range(4):  # every request is answered, by the member still up
            reply = client.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": f"Hi {i}"}], max_tokens=2
            )
            assert reply.choices[0].message.content is not None
        down = next(m for m in _members(front) if m["url"] == members[1].base_url)
        assert down["healthy"] is False
    finally:
        members[1].start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(m["healthy"] for m in _members(front)):
            break
        time.sleep(0.25)
    assert all(m["healthy"] for m in _members(front)), _members(front)


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("bad-json", 502, "upstream_error"),
        ("not-sse", 502, "upstream_error"),
        ("cut", 502, "upstream_error"),
        ("hang", 504, "upstream_timeout"),
        ("fail-500", 502, "upstream_error"),
        ("refuse-400", 400, "context_length_exceeded"),
    ],
)
def test_a_broken_upstream_is_a_clear_error_sent_once(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream], mode: str, status: int, code: str
) -> None:
    front, _, broken = pool
    before = broken.hits[mode]
    with pytest.raises(openai.APIStatusError) as caught:
        _client(front).chat.completions.create(
            model=f"broken-{mode}", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == code and body["message"]
    assert broken.hits[mode] == before + 1  # never sent twice


def test_a_stream_cut_by_the_upstream_ends_with_an_error_event(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, _, _ = pool
    stream = _client(front).chat.completions.create(
        model="broken-cut", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
    )
    with pytest.raises(openai.APIError, match="ended before it finished"):
        for _ in stream:
            pass


def test_background_and_a_client_that_leaves(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    front, _, _ = pool
    client = _client(front)
    job = client.responses.create(
        model="gpt-4.1", input="Tell me a story.", background=True, max_output_tokens=32
    )
    deadline = time.monotonic() + 60
    while (status := client.responses.retrieve(job.id).status) in ("queued", "in_progress"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status in ("completed", "incomplete")
    stream = client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Write a very long story."}],
        max_tokens=2000,
        stream=True,
    )
    for index, _ in enumerate(stream):
        if index == 3:
            break
    stream.close()  # the client leaves: the upstream request is closed too
    deadline = time.monotonic() + 10
    while any(m["inflight"] for m in _members(front)):
        assert time.monotonic() < deadline, _members(front)
        time.sleep(0.1)


def test_file_search_through_an_upstream_model(
    pool: tuple[LiveServer, list[LiveServer], BrokenUpstream],
) -> None:
    """The answer, and the store's embeddings, both come from the upstream servers."""
    front, _, _ = pool
    served = sum(int(m["served"]) for m in _members_of(front, "text-embedding-3-small"))
    client = _client(front)
    store = client.vector_stores.create(name="upstream-grounding")
    for name, text in DOCS.items():
        done = client.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=(name, text.encode())
        )
        assert done.status == "completed"
    response = client.responses.create(
        model="remote-smol",
        input="What pulls the oceans to make tides?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        tool_choice={"type": "file_search"},
        include=["file_search_call.results"],
        max_output_tokens=300,
    )
    call, message = response.output[0], response.output[-1]
    assert call.type == "file_search_call" and call.status == "completed", response.output
    assert call.results and call.results[0].filename == "tides.html"
    assert message.type == "message" and message.content[0].type == "output_text"
    assert message.content[0].annotations[0].filename == "tides.html"  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.output_tokens > 0
    assert sum(int(m["served"]) for m in _members_of(front, "text-embedding-3-small")) > served
