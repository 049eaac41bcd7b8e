"""The Responses API's file_search tool, in-process (fake chat engine, real embedding model):
the forced search, its ``file_search_call`` item with and without results, the grounded
answer's citations, the streamed events in the platform's order, follow-ups, and 404s."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.catalog import Catalog
from serverroom.context import get_principal
from serverroom.principal import Principal
from tests.api.test_vector_stores import store  # noqa: F401 - the fixture

Store = tuple[str, dict[str, str]]


def _tool(vs_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "file_search", "vector_store_ids": [vs_id], **extra}


def _searched(sdk: openai.OpenAI, vs_id: str, question: str, **extra: Any) -> Any:
    """A response that must search the store first (``tool_choice`` forces file_search)."""
    return sdk.responses.create(
        model="gpt-4.1-mini",
        input=question,
        tools=[_tool(vs_id, **extra.pop("tool", {}))],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},
        max_output_tokens=300,
        **extra,
    )


def test_a_forced_search_grounds_and_cites_the_answer(sdk: openai.OpenAI, store: Store) -> None:  # noqa: F811
    vs_id, ids = store
    response = _searched(
        sdk,
        vs_id,
        "What makes the tides?",
        tool={"max_num_results": 3},
        include=["file_search_call.results"],
    )
    call, message = response.output[0], response.output[1]
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.queries and all(isinstance(q, str) for q in call.queries)
    assert call.results is not None and 1 <= len(call.results) <= 3
    assert {r.file_id for r in call.results} <= set(ids.values())
    assert all(r.text and r.filename and r.score is not None for r in call.results)
    assert message.type == "message"
    part = message.content[0]
    assert part.type == "output_text"
    cited = [a for a in part.annotations if a.type == "file_citation"]
    assert cited and {a.file_id for a in cited} <= {r.file_id for r in call.results}
    assert all(a.index == len(part.text) for a in cited)
    assert response.usage is not None and response.usage.input_tokens > 0
    # Without the include, the call says what it searched for but not what it found.
    plain = _searched(sdk, vs_id, "How is bread made?")
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None
    # The stored chain continues, and a client may send the items back itself.
    later = sdk.responses.create(
        model="gpt-4.1-mini", previous_response_id=response.id, input="And why twice a day?"
    )
    assert later.status == "completed"
    replayed = sdk.responses.create(
        model="gpt-4.1-mini",
        input=[*[item.model_dump() for item in response.output], {"role": "user", "content": "ok"}],
        store=False,
    )
    assert replayed.status == "completed"


def test_the_stream_follows_the_platforms_event_order(sdk: openai.OpenAI, store: Store) -> None:  # noqa: F811
    vs_id, _ = store
    with sdk.responses.stream(
        model="gpt-4.1-mini",
        input="Tell me about volcanoes",
        tools=[_tool(vs_id)],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},
        max_output_tokens=300,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    searched = [
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    start = kinds.index("response.file_search_call.in_progress") - 1
    assert kinds[start : start + 5] == searched
    assert kinds.index("response.output_text.annotation.added") < kinds.index(
        "response.output_text.done"
    )
    assert kinds[-1] == "response.completed"
    assert [item.type for item in final.output] == ["file_search_call", "message"]


def test_unknown_or_foreign_stores_are_404_before_any_work(
    client: TestClient,
    sdk: openai.OpenAI,
    store: Store,  # noqa: F811
) -> None:
    vs_id, _ = store
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="gpt-4.1-mini", input="x", tools=[_tool("vs_missing")])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.responses.create(
            model="gpt-4.1-mini",
            input="x",
            tools=[{"type": "file_search"}],  # type: ignore[list-item]
        )
    assert bad.value.body["param"] == "tools[0].vector_store_ids"  # type: ignore[index]
    app = client.app
    app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        with pytest.raises(openai.NotFoundError):
            sdk.responses.create(model="gpt-4.1-mini", input="x", tools=[_tool(vs_id)])  # type: ignore[list-item]
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]


def test_each_search_is_billed_with_the_tokens(
    client: TestClient,
    sdk: openai.OpenAI,
    store: Store,  # noqa: F811
) -> None:
    vs_id, _ = store
    start = int(time.time()) - 5
    response = _searched(sdk, vs_id, "What makes the tides?")
    assert response.usage is not None and response.output[0].type == "file_search_call"
    pricing = Catalog.load().resolve("gpt-4.1-mini").pricing
    tokens = pricing.cost(
        response.usage.input_tokens,
        response.usage.input_tokens_details.cached_tokens,
        response.usage.output_tokens,
    )
    page = client.get("/v1/organization/costs", params={"start_time": start}).json()
    billed = sum(r["amount"]["value"] for bucket in page["data"] for r in bucket["results"])
    assert billed == pytest.approx(tokens + 2.50 / 1000)


def test_the_answer_after_a_search_keeps_to_text_format(
    sdk: openai.OpenAI,
    store: Store,  # noqa: F811
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    text = {"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}}
    response = _searched(sdk, store[0], "What makes the tides?", text=text)
    assert [item.type for item in response.output] == ["file_search_call", "message"]
    assert response.status == "completed"
    assert set(json.loads(response.output_text)) == {"answer"}
