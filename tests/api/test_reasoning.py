"""Reasoning models on the fake engine (``o3`` thinks in a scaffolded block first): the
reasoning item and its summary, sealed content replayed by a stateless client, usage, the
stream's event order, a budget that thinking eats, stored chains, and both APIs."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

HI = {"model": "o3", "input": "Hi"}
# A reasoning item with a summary, as a stream tells of it (the platform's order).
REASONING_EVENTS = [
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
]


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/v1/responses", json=body)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_reasoning_comes_first_and_counts_as_output(client: TestClient) -> None:
    body = _post(client, {**HI, "reasoning": {"effort": "low"}})
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [] and "encrypted_content" not in reasoning
    assert message["type"] == "message" and message["content"][0]["text"]
    usage = body["usage"]
    thought = usage["output_tokens_details"]["reasoning_tokens"]
    assert 0 < thought <= 64 + len("</think>")  # low effort's budget
    assert usage["output_tokens"] > thought
    assert body["reasoning"] == {"effort": "low", "summary": None}
    assert _post(client, HI)["reasoning"]["effort"] == "medium"  # the default, echoed


def test_effort_none_does_not_think(client: TestClient) -> None:
    body = _post(client, {**HI, "reasoning": {"effort": "none"}})
    assert [item["type"] for item in body["output"]] == ["message"]
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] == 0


def test_summaries_hold_the_thinking(client: TestClient) -> None:
    for mode in ("auto", "concise", "detailed"):
        body = _post(client, {**HI, "reasoning": {"effort": "low", "summary": mode}})
        (part,) = body["output"][0]["summary"]
        assert part["type"] == "summary_text" and part["text"].strip()


def test_summary_and_effort_values_are_checked(client: TestClient) -> None:
    bad = client.post("/v1/responses", json={**HI, "reasoning": {"summary": "long"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reasoning.summary"
    assert bad.json()["error"]["code"] == "invalid_value"
    plain = {"model": "gpt-4.1", "input": "Hi", "reasoning": {"summary": "auto"}}
    refused = client.post("/v1/responses", json=plain)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsupported_parameter"


def test_encrypted_content_round_trips_through_a_stateless_client(client: TestClient) -> None:
    first = _post(
        client,
        {**HI, "store": False, "include": ["reasoning.encrypted_content"]},
    )
    reasoning = first["output"][0]
    sealed = reasoning["encrypted_content"]
    assert isinstance(sealed, str) and "scratch" not in sealed  # opaque, not the text
    replay = [
        {"role": "user", "content": "Hi"},
        *first["output"],
        {"role": "user", "content": "And then?"},
    ]
    second = _post(client, {"model": "o3", "input": replay, "store": False})
    assert second["status"] == "completed"
    tampered = [*replay]
    tampered[1] = {**reasoning, "encrypted_content": sealed[:-6] + "AAAAAA"}
    bad = client.post("/v1/responses", json={"model": "o3", "input": tampered, "store": False})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (
        error["code"] == "invalid_encrypted_content"
        and error["param"] == "input[1].encrypted_content"
    )
    assert reasoning["id"] in error["message"]


def test_the_stream_tells_of_reasoning_in_the_platforms_order(client: TestClient) -> None:
    body = {**HI, "stream": True, "reasoning": {"effort": "low", "summary": "auto"}}
    with client.stream("POST", "/v1/responses", json=body) as reply:
        events = [json.loads(line[6:]) for line in reply.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    squeezed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert squeezed == [
        "response.created",
        "response.in_progress",
        *REASONING_EVENTS,
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e["delta"] for e in events if e["type"].endswith("summary_text.delta"))
    done = next(e for e in events if e["type"] == "response.reasoning_summary_text.done")
    assert deltas.strip() == done["text"] and done["summary_index"] == 0
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [
        0,
        1,
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert final["output"][0]["summary"][0]["text"] == done["text"]


def test_thinking_that_eats_the_budget_is_incomplete(client: TestClient) -> None:
    body = _post(client, {**HI, "max_output_tokens": 16, "reasoning": {"effort": "high"}})
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in body["output"]] == ["reasoning"]
    usage = body["usage"]
    assert usage["output_tokens"] == usage["output_tokens_details"]["reasoning_tokens"] == 16


def test_stored_chains_keep_reasoning_items(client: TestClient) -> None:
    first = _post(client, {**HI, "reasoning": {"effort": "low", "summary": "auto"}})
    stored = client.get(f"/v1/responses/{first['id']}").json()
    assert stored["output"] == first["output"] and stored["output"][0]["type"] == "reasoning"
    follow = {"model": "o3", "input": "More?", "previous_response_id": first["id"]}
    second = _post(client, follow)
    assert second["status"] == "completed" and second["output"][0]["type"] == "reasoning"
    conversation = client.post("/v1/conversations", json={}).json()["id"]
    _post(client, {**HI, "conversation": conversation})
    items = client.get(f"/v1/conversations/{conversation}/items", params={"order": "asc"}).json()
    assert [i["type"] for i in items["data"]] == ["message", "reasoning", "message"]


def test_chat_counts_reasoning_tokens_and_never_shows_the_thinking(client: TestClient) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    body = {"model": "o3", "messages": messages, "reasoning_effort": "low"}
    reply = client.post("/v1/chat/completions", json=body).json()
    details = reply["usage"]["completion_tokens_details"]
    assert 0 < details["reasoning_tokens"] < reply["usage"]["completion_tokens"]
    assert "<think>" not in reply["choices"][0]["message"]["content"]
    none = client.post("/v1/chat/completions", json={**body, "reasoning_effort": "none"}).json()
    assert none["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    cut = client.post("/v1/chat/completions", json={**body, "max_completion_tokens": 10}).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["choices"][0]["message"]["content"] == ""


def test_the_sdk_reads_every_reasoning_shape(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(
        model="o3",
        input="Hi",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    first = response.output[0]
    assert first.type == "reasoning" and first.summary and first.encrypted_content
    assert response.output_text
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens
    with sdk.responses.stream(model="o3", input="Hi", reasoning={"summary": "auto"}) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.output[0].type == "reasoning"


@pytest.mark.parametrize("effort", ["minimal", "medium", "high", "xhigh"])
def test_each_effort_runs(client: TestClient, effort: str) -> None:
    body = _post(client, {**HI, "reasoning": {"effort": effort}, "max_output_tokens": 400})
    assert body["output"][0]["type"] == "reasoning"


def test_a_stored_reasoning_response_replays_its_summary(sdk: openai.OpenAI) -> None:
    done = sdk.responses.create(model="o3", input="Hi", reasoning={"summary": "auto"})
    events = list(sdk.responses.retrieve(done.id, stream=True))
    kinds = [e.type for e in events]
    assert kinds[2:8] == REASONING_EVENTS
    final = events[-1]
    assert final.type == "response.completed" and final.response.output == done.output
