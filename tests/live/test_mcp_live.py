"""Remote MCP tools with the real bundled model through the official SDK: a real
``serverroom serve`` lists a real MCP server's tools, the model calls one, the server runs
it and the model answers; the approval round trip streams as the platform's events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.hosted.mcp_server import Served, mcp_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with mcp_server() as running:
        yield running


def _tool(url: str, **extra: Any) -> Any:
    return {"type": "mcp", "server_label": "calc", "server_url": url, **extra}


def test_the_model_calls_an_mcp_tool_and_answers(
    live_client: openai.OpenAI, served: Served
) -> None:
    served.calls.clear()
    response = live_client.responses.create(
        model="gpt-4.1-mini",
        input="Use the add tool to add 17 and 25.",
        tools=[_tool(served.http_url, require_approval="never", headers={"X-Key": "k1"})],
        tool_choice={"type": "mcp", "server_label": "calc", "name": "add"},  # type: ignore[typeddict-item]
        max_output_tokens=120,
    )
    kinds = [item.type for item in response.output]
    assert kinds[:2] == ["mcp_list_tools", "mcp_call"] and kinds[-1] == "message", kinds
    call = response.output[1]
    args = json.loads(call.arguments)
    assert isinstance(args["a"], int) and isinstance(args["b"], int)  # the schema held
    assert call.status == "completed" and call.output == str(args["a"] + args["b"])
    assert served.calls[-1] == {"name": "add", **args}
    assert any(h.get("x-key") == "k1" for h in served.headers)
    assert response.output_text.strip()


def test_the_approval_round_trip_streams(live_client: openai.OpenAI, served: Served) -> None:
    with live_client.responses.stream(
        model="gpt-4.1-mini",
        input="Add 2 and 3 with the tool.",
        tools=[_tool(served.sse_url)],
        tool_choice={"type": "mcp", "server_label": "calc", "name": "add"},  # type: ignore[typeddict-item]
        max_output_tokens=120,
    ) as stream:
        kinds = [event.type for event in stream]
        asked = stream.get_final_response()
    assert "response.mcp_list_tools.completed" in kinds and kinds[-1] == "response.completed"
    request = asked.output[-1]
    assert request.type == "mcp_approval_request"
    with live_client.responses.stream(
        model="gpt-4.1-mini",
        previous_response_id=asked.id,
        tools=[_tool(served.sse_url)],
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
        tool_choice="none",  # the approved call runs all the same; then the model answers
        temperature=0,
        max_output_tokens=120,
    ) as stream:
        kinds = [event.type for event in stream]
        answered = stream.get_final_response()
    assert "response.mcp_call.completed" in kinds
    call = answered.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == request.id
    assert call.output == str(sum(json.loads(request.arguments).values()))
    assert answered.output[-1].type == "message"
