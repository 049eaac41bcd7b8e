"""Stored state: retrieve, delete, input_items, previous_response_id chains, project scoping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.api.responses.repository import ResponseRepository
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.api.responses.service import plan_response
from serverroom.api.responses.stream import final_response, run_events
from serverroom.app import create_app
from serverroom.context import AppContext, Call, get_principal
from serverroom.errors import NotFoundError
from serverroom.generation import Result, generate
from serverroom.principal import Principal
from tests.conftest import fake_settings


def test_retrieve_and_delete(sdk: openai.OpenAI, client: TestClient) -> None:
    created = sdk.responses.create(model="gpt-4.1", input="hi", metadata={"k": "v"})
    got = sdk.responses.retrieve(created.id)
    assert got.model_dump() == created.model_dump()
    reply = client.delete(f"/v1/responses/{created.id}")
    assert reply.status_code == 200
    assert reply.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    assert client.delete(f"/v1/responses/{created.id}").status_code == 404
    assert client.get(f"/v1/responses/{created.id}/input_items").status_code == 404


def test_store_false_is_not_kept(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-4.1", input="hi", store=False)
    assert response.status == "completed"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as info:
        sdk.responses.create(model="gpt-4.1", input="x", previous_response_id=response.id)
    assert info.value.param == "previous_response_id"


def test_unknown_previous_response(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="gpt-4.1", input="x", previous_response_id="resp_nope")


def test_chain_rebuilds_history(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(
        model="gpt-4.1", input="one", instructions="Long instructions " * 5
    )
    second = sdk.responses.create(model="gpt-4.1", input="two", previous_response_id=first.id)
    third = sdk.responses.create(model="gpt-4.1", input="three", previous_response_id=second.id)
    assert third.previous_response_id == second.id
    u1, u2, u3 = first.usage, second.usage, third.usage
    assert u1 and u2 and u3
    assert u3.input_tokens > u2.input_tokens
    # The instructions of turn one are not carried over: turn two's prompt holds only the
    # turn-one items (user "one" + the answer) and "two".
    alone = sdk.responses.input_tokens.count(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "two"},
        ],
    )
    assert u2.input_tokens == alone.input_tokens
    chained = sdk.responses.input_tokens.count(
        model="gpt-4.1", input="three", previous_response_id=second.id
    )
    assert chained.input_tokens == u3.input_tokens


def test_chain_with_function_calls(sdk: openai.OpenAI) -> None:
    call = {
        "type": "function_call",
        "call_id": "call_9",
        "name": "lookup",
        "arguments": "{}",
    }
    first = sdk.responses.create(
        model="gpt-4.1",
        input=[{"role": "user", "content": "look it up"}, call],  # type: ignore[list-item]
    )
    second = sdk.responses.create(
        model="gpt-4.1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_9", "output": "42"}],
    )
    assert second.status == "completed"
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens


def test_input_items_pagination(sdk: openai.OpenAI, client: TestClient) -> None:
    items = [{"role": "user", "content": f"message {i}"} for i in range(25)]
    response = sdk.responses.create(model="gpt-4.1", input=items)  # type: ignore[arg-type]
    page = sdk.responses.input_items.list(response.id)
    assert len(page.data) == 20 and page.has_more is True
    assert page.data[0].content[0].text == "message 24"  # type: ignore[union-attr]
    assert all(item.id for item in page.data)
    everything = list(sdk.responses.input_items.list(response.id, order="asc", limit=7))
    assert [i.content[0].text for i in everything] == [f"message {i}" for i in range(25)]  # type: ignore[union-attr]
    body = client.get(
        f"/v1/responses/{response.id}/input_items",
        params={"order": "asc", "limit": 5, "after": everything[19].id},
    ).json()
    assert [d["content"][0]["text"] for d in body["data"]] == [
        f"message {i}" for i in range(20, 25)
    ]
    assert body["has_more"] is False
    assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]
    bad = client.get(f"/v1/responses/{response.id}/input_items", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"
    missing = client.get(f"/v1/responses/{response.id}/input_items", params={"after": "msg_x"})
    assert missing.status_code == 404


def test_other_project_gets_404(client: TestClient, sdk: openai.OpenAI) -> None:
    created = sdk.responses.create(model="gpt-4.1", input="hi")
    app = client.app
    app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        assert client.get(f"/v1/responses/{created.id}").status_code == 404
        assert client.get(f"/v1/responses/{created.id}/input_items").status_code == 404
        assert client.delete(f"/v1/responses/{created.id}").status_code == 404
        assert client.post(f"/v1/responses/{created.id}/cancel").status_code == 404
        assert client.get(f"/v1/responses/{created.id}?stream=true").status_code == 404
        chained = {"model": "gpt-4.1", "input": "x", "previous_response_id": created.id}
        assert client.post("/v1/responses", json=chained).status_code == 404
        assert client.post("/v1/responses/input_tokens", json=chained).status_code == 404
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert sdk.responses.retrieve(created.id).id == created.id


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[AppContext]:
    context: AppContext = create_app(fake_settings(tmp_path)).state.context
    await context.db.migrate()
    try:
        yield context
    finally:
        await context.engines.close()
        await context.db.close()


async def test_service_scopes_by_project(ctx: AppContext) -> None:
    alice, bob = Principal(project_id="proj_alice"), Principal(project_id="proj_bob")
    request = ResponseCreateRequest(model="gpt-4.1", input="hi")
    plan = await plan_response(Call(ctx, alice), request)
    response = await final_response(run_events(plan, generate(plan.gen, "req_1")))
    repo = ResponseRepository(ctx.db)
    assert (await repo.get(alice.project_id, response.id)).body["id"] == response.id
    with pytest.raises(NotFoundError):
        await repo.get(bob.project_id, response.id)
    follow = ResponseCreateRequest(model="gpt-4.1", input="x", previous_response_id=response.id)
    with pytest.raises(NotFoundError):
        await plan_response(Call(ctx, bob), follow)
    with pytest.raises(NotFoundError):
        await repo.delete(bob.project_id, response.id)


async def test_closing_the_run_stops_generation(ctx: AppContext) -> None:
    principal = Principal(project_id="proj_x")
    plan = await plan_response(
        Call(ctx, principal), ResponseCreateRequest(model="gpt-4.1", input="hi")
    )
    closed: list[bool] = []

    async def tracked() -> AsyncIterator[Result]:
        source = generate(plan.gen, "req")
        try:
            async for event in source:
                yield event
        finally:
            await source.aclose()  # type: ignore[attr-defined]
            closed.append(True)

    events = run_events(plan, tracked())
    seen = [await events.__anext__() for _ in range(6)]
    assert seen[-1].type == "response.output_text.delta"
    await events.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
    with pytest.raises(NotFoundError):
        await ResponseRepository(ctx.db).get(principal.project_id, plan.response_id)
