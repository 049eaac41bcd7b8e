"""The Responses API's mcp tool, in-process (fake engine) against a real MCP server: listing
(cached along a chain), calls run by the server, approvals, failures that become
``mcp_call.error``, a server that is down or hangs, the allow-list, and the streamed events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import ToolSettings
from tests.conftest import fake_settings
from tests.hosted.mcp_server import Served, mcp_server
from tests.upstream.stub import dead_url, stub_server


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with mcp_server() as running:
        yield running


@pytest.fixture
def sdk(tmp_path: Path) -> Iterator[openai.OpenAI]:
    settings = fake_settings(tmp_path, tools=ToolSettings(mcp_timeout_seconds=2))
    with TestClient(create_app(settings)) as client:
        yield openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )


def _tool(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "calc", "server_url": url, **extra}


def _ask(sdk: openai.OpenAI, tool: dict[str, Any], name: str = "add", **extra: Any) -> Any:
    return sdk.responses.create(
        model="gpt-4.1-mini",
        input=extra.pop("input", "What is 2 plus 3?"),
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "mcp", "server_label": "calc", "name": name},  # type: ignore[typeddict-item]
        max_output_tokens=200,
        **extra,
    )


def test_the_server_lists_calls_and_answers(sdk: openai.OpenAI, served: Served) -> None:
    served.calls.clear()
    response = _ask(sdk, _tool(served.http_url, require_approval="never"))
    listing, call, message = response.output
    assert listing.type == "mcp_list_tools" and listing.server_label == "calc"
    assert {t.name for t in listing.tools} == {"add", "fail"}
    assert call.type == "mcp_call" and call.status == "completed" and call.error is None
    assert call.name == "add" and call.server_label == "calc"
    args = json.loads(call.arguments)
    assert call.output == str(args["a"] + args["b"])
    assert served.calls[-1] == {"name": "add", **args}
    assert message.type == "message" and message.status == "completed"
    assert response.usage is not None and response.usage.input_tokens > 0
    # Along the chain the listing is not made again, and the model may call again.
    later = _ask(
        sdk, _tool(served.http_url, require_approval="never"), previous_response_id=response.id
    )
    assert [i.type for i in later.output] == ["mcp_call", "message"]
    # A stateless client sends the items back; its listing is used as it is.
    replayed = _ask(
        sdk,
        _tool(served.http_url, require_approval="never"),
        input=[*[i.model_dump() for i in response.output], {"role": "user", "content": "again"}],
        store=False,
    )
    assert [i.type for i in replayed.output] == ["mcp_call", "message"]


def test_approval_round_trip(sdk: openai.OpenAI, served: Served) -> None:
    served.calls.clear()
    asked = _ask(sdk, _tool(served.sse_url))  # approval is required by default
    assert [i.type for i in asked.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = asked.output[1]
    assert request.name == "add" and json.loads(request.arguments).keys() == {"a", "b"}
    assert served.calls == [] and asked.status == "completed"
    approved = sdk.responses.create(
        model="gpt-4.1-mini",
        previous_response_id=asked.id,
        tools=[_tool(served.sse_url)],  # type: ignore[list-item]
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
        ],
    )
    call = approved.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == request.id
    assert call.arguments == request.arguments and call.status == "completed"
    assert served.calls == [{"name": "add", **json.loads(request.arguments)}]
    assert approved.output[-1].type == "message"
    # Declined: nothing runs, the model answers.
    again = _ask(sdk, _tool(served.sse_url))
    declined = sdk.responses.create(
        model="gpt-4.1-mini",
        previous_response_id=again.id,
        tools=[_tool(served.sse_url)],  # type: ignore[list-item]
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": again.output[1].id,
                "approve": False,
            }
        ],
    )
    assert [i.type for i in declined.output] == ["message"] and len(served.calls) == 1
    # An answer to a request that was never made is a 400.
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(
            model="gpt-4.1-mini",
            tools=[_tool(served.sse_url)],  # type: ignore[list-item]
            input=[
                {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}
            ],
        )


def test_approval_filters_and_allowed_tools(sdk: openai.OpenAI, served: Served) -> None:
    never_add = {"never": {"tool_names": ["add"]}}
    response = _ask(sdk, _tool(served.http_url, require_approval=never_add))
    assert response.output[1].type == "mcp_call"
    read_only = _ask(sdk, _tool(served.http_url, require_approval={"never": {"read_only": True}}))
    assert read_only.output[1].type == "mcp_call"  # add is marked read-only
    only = _ask(sdk, _tool(served.http_url, allowed_tools=["add"], require_approval="never"))
    assert [t.name for t in only.output[0].tools] == ["add"]
    with pytest.raises(openai.BadRequestError):
        _ask(sdk, _tool(served.http_url, allowed_tools=["add"]), name="fail")


def test_failures_become_mcp_call_errors(sdk: openai.OpenAI, served: Served) -> None:
    failed = _ask(sdk, _tool(served.http_url, require_approval="never"), name="fail")
    call = failed.output[1]
    assert failed.status == "completed" and call.status == "failed"
    assert call.error is not None and call.error.type == "mcp_tool_execution_error"
    assert failed.output[-1].type == "message"
    # A listed server that hangs when called: the call times out into its error.
    listing = failed.output[0].model_dump()
    with stub_server(lambda request: None) as silent:
        hung = _ask(
            sdk,
            _tool(silent.base_url("mcp"), require_approval="never"),
            input=[listing, {"role": "user", "content": "What is 2 plus 3?"}],
            store=False,
        )
    assert hung.output[0].type == "mcp_call" and hung.output[0].status == "failed"
    assert hung.output[0].error.type == "http_error" and hung.output[0].error.code == 504


def test_a_server_that_is_down_or_not_allowed(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as down:
        _ask(sdk, _tool(dead_url().replace("/v1", "/mcp")))
    assert down.value.status_code == 424
    assert down.value.body["type"] == "external_connector_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as outside:
        _ask(sdk, _tool("https://mcp.example.com/mcp"))
    assert outside.value.body["param"] == "tools[0].server_url"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as connector:
        _ask(sdk, {"type": "mcp", "server_label": "calc", "connector_id": "connector_gmail"})
    assert connector.value.body["param"] == "tools[0].connector_id"  # type: ignore[index]


def test_the_stream_tells_of_listing_and_call(sdk: openai.OpenAI, served: Served) -> None:
    with sdk.responses.stream(
        model="gpt-4.1-mini",
        input="What is 2 plus 3?",
        tools=[_tool(served.http_url, require_approval="never")],  # type: ignore[list-item]
        tool_choice={"type": "mcp", "server_label": "calc", "name": "add"},  # type: ignore[typeddict-item]
        max_output_tokens=200,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call.in_progress",
    ]
    assert kinds[: len(expected)] == expected
    deltas = [e for e in events if e.type == "response.mcp_call_arguments.delta"]
    done = next(e for e in events if e.type == "response.mcp_call_arguments.done")
    assert "".join(d.delta for d in deltas) == done.arguments == final.output[1].arguments
    after = kinds[kinds.index("response.mcp_call_arguments.done") :]
    assert after[1:3] == ["response.mcp_call.completed", "response.output_item.done"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
