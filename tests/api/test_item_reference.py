"""``item_reference`` input items: an earlier item by id, from a stored response (input or
output) or a conversation, put in its place; an unknown or unstored one is a 404."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient


def _count(sdk: openai.OpenAI, items: Any) -> int:
    return sdk.responses.input_tokens.count(model="gpt-4o-mini", input=items).input_tokens


def test_a_reference_reads_as_the_item_it_names(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="gpt-4o-mini", input="My name is Ada.")
    answer = first.output[0]
    question = {"role": "user", "content": "What is my name?"}
    by_reference: Any = [{"type": "item_reference", "id": answer.id}, question]
    in_full: Any = [answer.model_dump(exclude_none=True), question]
    assert _count(sdk, by_reference) == _count(sdk, in_full)
    second = sdk.responses.create(model="gpt-4o-mini", input=by_reference)
    items = list(sdk.responses.input_items.list(second.id, order="asc"))
    assert [i.type for i in items] == ["message", "message"]
    assert items[0].id == answer.id and items[0].role == "assistant"  # type: ignore[union-attr]


def test_input_items_and_typeless_references_resolve(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="gpt-4o-mini", input="Remember: blue.")
    sent = sdk.responses.input_items.list(first.id).data[0]
    typeless: Any = [{"id": sent.id}]  # ``type`` may be left out, as on the platform
    assert _count(sdk, typeless) == _count(sdk, [{"role": "user", "content": "Remember: blue."}])


def test_conversation_items_resolve(sdk: openai.OpenAI) -> None:
    conversation = sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Tea, not coffee."}]
    )
    item = sdk.conversations.items.list(conversation.id).data[0]
    reference: Any = [{"type": "item_reference", "id": item.id}]
    assert _count(sdk, reference) == _count(sdk, [{"role": "user", "content": "Tea, not coffee."}])


@pytest.mark.parametrize("store", [True, False])
def test_unknown_or_unstored_items_are_a_404(client: TestClient, store: bool) -> None:
    made = client.post(
        "/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi", "store": store}
    ).json()
    target = made["output"][0]["id"] if not store else "msg_unknown"
    body = {"model": "gpt-4o-mini", "input": [{"type": "item_reference", "id": target}]}
    reply = client.post("/v1/responses", json=body)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["param"] == "input" and target in error["message"]
    assert error["type"] == "invalid_request_error"


def test_a_chain_resolves_from_its_own_items_first(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="gpt-4o-mini", input="One.")
    second = sdk.responses.create(
        model="gpt-4o-mini",
        previous_response_id=first.id,
        input=[{"type": "item_reference", "id": first.output[0].id}],  # type: ignore[list-item]
    )
    assert second.status == "completed"


def test_a_deleted_responses_items_are_gone(sdk: openai.OpenAI, client: TestClient) -> None:
    first = sdk.responses.create(model="gpt-4o-mini", input="Forget me.")
    sdk.responses.delete(first.id)
    body = {"model": "gpt-4o-mini", "input": [{"type": "item_reference", "id": first.output[0].id}]}
    assert client.post("/v1/responses", json=body).status_code == 404
