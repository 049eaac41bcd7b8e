"""The Conversations API and the Responses ``conversation`` parameter."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.context import get_principal
from serverroom.principal import Principal


def test_crud(sdk: openai.OpenAI, client: TestClient) -> None:
    conv = sdk.conversations.create(metadata={"topic": "demo"})
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "demo"} and isinstance(conv.created_at, int)
    assert sdk.conversations.retrieve(conv.id) == conv
    updated = sdk.conversations.update(conv.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    deleted = sdk.conversations.delete(conv.id)
    assert deleted.deleted is True and deleted.id == conv.id
    assert deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(conv.id)
    reply = client.post(f"/v1/conversations/{conv.id}", json={})
    assert reply.status_code in (400, 404)


def test_update_requires_metadata(sdk: openai.OpenAI, client: TestClient) -> None:
    conv = sdk.conversations.create()
    reply = client.post(f"/v1/conversations/{conv.id}", json={})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "metadata"


def test_items(sdk: openai.OpenAI, client: TestClient) -> None:
    conv = sdk.conversations.create(items=[{"type": "message", "role": "user", "content": "first"}])
    added = sdk.conversations.items.create(
        conv.id,
        items=[
            {"type": "message", "role": "assistant", "content": "second"},
            {"type": "message", "role": "user", "content": "third"},
        ],
    )
    assert [item.type for item in added.data] == ["message", "message"]
    assert added.first_id == added.data[0].id and added.last_id == added.data[-1].id
    listed = sdk.conversations.items.list(conv.id)
    texts = [item.content[0].text for item in listed.data]  # type: ignore[union-attr]
    assert texts == ["third", "second", "first"]
    assert listed.has_more is False and listed.last_id == listed.data[-1].id
    asc = list(sdk.conversations.items.list(conv.id, order="asc", limit=1))
    assert [i.content[0].text for i in asc] == ["first", "second", "third"]  # type: ignore[union-attr]
    one = sdk.conversations.items.retrieve(asc[1].id, conversation_id=conv.id)
    assert one.id == asc[1].id and one.role == "assistant"  # type: ignore[union-attr]
    conv_after = sdk.conversations.items.delete(asc[1].id, conversation_id=conv.id)
    assert conv_after.id == conv.id and conv_after.object == "conversation"
    remaining = list(sdk.conversations.items.list(conv.id, order="asc"))
    assert [i.id for i in remaining] == [asc[0].id, asc[2].id]
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(asc[1].id, conversation_id=conv.id)


def test_items_after_must_be_an_item_of_the_conversation(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    conv = sdk.conversations.create(items=[{"role": "user", "content": "mine"}])
    other = sdk.conversations.create(items=[{"role": "user", "content": "theirs"}])
    theirs = sdk.conversations.items.list(other.id).data[0].id
    for after in ("msg_nope", theirs):
        reply = client.get(f"/v1/conversations/{conv.id}/items", params={"after": after})
        assert reply.status_code == 404 and reply.json()["error"]["param"] == "after"


def test_item_limits(client: TestClient, sdk: openai.OpenAI) -> None:
    items = [{"role": "user", "content": str(i)} for i in range(21)]
    reply = client.post("/v1/conversations", json={"items": items})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "items"
    conv = sdk.conversations.create()
    reply = client.post(f"/v1/conversations/{conv.id}/items", json={"items": items})
    assert reply.status_code == 400
    reply = client.post(f"/v1/conversations/{conv.id}/items", json={"items": [{"role": "x"}]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "items[0].role"
    missing = client.post("/v1/conversations/conv_nope/items", json={"items": items[:1]})
    assert missing.status_code == 404


def test_pagination_over_many_items(sdk: openai.OpenAI) -> None:
    conv = sdk.conversations.create(items=[{"role": "user", "content": f"m{i}"} for i in range(20)])
    sdk.conversations.items.create(
        conv.id, items=[{"role": "user", "content": f"m{i}"} for i in range(20, 30)]
    )
    page = sdk.conversations.items.list(conv.id, limit=20)
    assert len(page.data) == 20 and page.has_more is True
    everything = list(sdk.conversations.items.list(conv.id, limit=8))
    assert [i.content[0].text for i in everything] == [f"m{i}" for i in range(29, -1, -1)]  # type: ignore[union-attr]


def test_responses_use_and_extend_the_conversation(sdk: openai.OpenAI) -> None:
    conv = sdk.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    first = sdk.responses.create(model="gpt-4.1", input="Hi!", conversation=conv.id)
    assert first.conversation is not None and first.conversation.id == conv.id
    items = list(sdk.conversations.items.list(conv.id, order="asc"))
    assert [i.type for i in items] == ["message", "message", "message"]
    assert items[1].role == "user" and items[2].role == "assistant"  # type: ignore[union-attr]
    assert items[2].id == first.output[0].id
    second = sdk.responses.create(model="gpt-4.1", input="Again", conversation={"id": conv.id})
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
    assert len(list(sdk.conversations.items.list(conv.id))) == 5
    with sdk.responses.stream(model="gpt-4.1", input="Streamed", conversation=conv.id) as s:
        s.get_final_response()
    assert len(list(sdk.conversations.items.list(conv.id))) == 7


def test_conversation_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.responses.create(model="gpt-4.1", input="x", conversation="conv_missing")
    assert info.value.param == "conversation"
    first = sdk.responses.create(model="gpt-4.1", input="x")
    conv = sdk.conversations.create()
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(
            model="gpt-4.1", input="x", conversation=conv.id, previous_response_id=first.id
        )


def test_other_project_gets_404(sdk: openai.OpenAI, client: TestClient) -> None:
    conv = sdk.conversations.create(items=[{"role": "user", "content": "secret"}])
    items = list(sdk.conversations.items.list(conv.id))
    client.app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_b")  # type: ignore[attr-defined]
    try:
        assert client.get(f"/v1/conversations/{conv.id}").status_code == 404
        assert client.get(f"/v1/conversations/{conv.id}/items").status_code == 404
        assert client.delete(f"/v1/conversations/{conv.id}").status_code == 404
        assert client.post(f"/v1/conversations/{conv.id}", json={"metadata": {}}).status_code == 404
        item_id = items[0].id
        assert client.get(f"/v1/conversations/{conv.id}/items/{item_id}").status_code == 404
        assert client.delete(f"/v1/conversations/{conv.id}/items/{item_id}").status_code == 404
        more = {"items": [{"role": "user", "content": "x"}]}
        assert client.post(f"/v1/conversations/{conv.id}/items", json=more).status_code == 404
        reply = client.post(
            "/v1/responses", json={"model": "gpt-4.1", "input": "x", "conversation": conv.id}
        )
        assert reply.status_code == 404
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert sdk.conversations.retrieve(conv.id).id == conv.id
    assert [i.id for i in sdk.conversations.items.list(conv.id)] == [i.id for i in items]


def test_stored_items_are_valid_sdk_items(client: TestClient) -> None:
    """Items are normalised on write, so list endpoints can return them without re-validation."""
    from typing import Any

    from openai.types.conversations.conversation_item import ConversationItem
    from openai.types.responses.response_item import ResponseItem
    from pydantic import TypeAdapter

    items = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
    ]
    conv = client.post("/v1/conversations", json={"items": items}).json()
    listed = client.get(f"/v1/conversations/{conv['id']}/items", params={"order": "asc"}).json()
    for item in listed["data"]:
        TypeAdapter[Any](ConversationItem).validate_python(item)
    created = client.post(
        "/v1/responses", json={"model": "gpt-4.1", "input": items, "max_output_tokens": 2}
    ).json()
    inputs = client.get(f"/v1/responses/{created['id']}/input_items").json()
    assert len(inputs["data"]) == len(items)
    TypeAdapter(list[ResponseItem]).validate_python(inputs["data"])
