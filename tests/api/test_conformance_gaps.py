"""Small conformance points found by the SDK's own strict tests and negative-input suites."""

from __future__ import annotations

import json

import openai
from fastapi.testclient import TestClient

TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def test_input_tokens_count_instructions_and_tools_without_input(sdk: openai.OpenAI) -> None:
    count = sdk.responses.input_tokens.count
    alone = count(model="gpt-4.1", instructions="Be brief.").input_tokens
    with_tools = count(model="gpt-4.1", instructions="Be brief.", tools=[TOOL]).input_tokens  # type: ignore[list-item]
    assert 0 < alone < with_tools


def test_upload_purposes_are_the_platforms(client: TestClient) -> None:
    reply = client.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"purpose": "evals"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "purpose"


def test_file_objects_and_pages_leave_out_absent_values(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    empty = client.get("/v1/files").json()
    assert empty["data"] == [] and "first_id" not in empty and "last_id" not in empty
    plain = client.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"purpose": "user_data"})
    assert "expires_at" not in plain.json() and "status_details" not in plain.json()
    strict = openai.OpenAI(
        api_key="sk", base_url="http://testserver/v1", http_client=client,
        _strict_response_validation=True,
    )  # fmt: skip
    assert [f.id for f in strict.files.list()] == [plain.json()["id"]]


def test_expires_after_as_one_json_form_field(client: TestClient) -> None:
    expires = json.dumps({"anchor": "created_at", "seconds": 7200})
    reply = client.post(
        "/v1/files",
        files={"file": ("a.jsonl", b"{}")},
        data={"purpose": "batch", "expires_after": expires},
    ).json()
    assert reply["expires_at"] == reply["created_at"] + 7200
    bad = client.post(
        "/v1/files",
        files={"file": ("a.jsonl", b"{}")},
        data={"purpose": "batch", "expires_after": "soon"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expires_after"


def test_a_reasoning_item_needs_an_id(client: TestClient) -> None:
    conversation = client.post("/v1/conversations", json={}).json()["id"]
    reply = client.post(
        f"/v1/conversations/{conversation}/items",
        json={"items": [{"type": "reasoning", "summary": []}]},
    )
    assert reply.status_code == 400


def test_embeddings_user_null_is_a_400(client: TestClient) -> None:
    body = {"model": "text-embedding-3-small", "input": "hi", "user": None}
    reply = client.post("/v1/embeddings", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "user"
    assert client.post("/v1/embeddings", json={**body, "user": "u1"}).status_code == 200
