"""The MCP client against a real MCP server: listing and calling over both transports,
tool errors, a server that is down or hangs, and the URL allow-list."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from serverroom.errors import InvalidRequestError
from serverroom.hosted.mcp_client import McpFailure, McpServer, call_tool, check_url, list_tools
from tests.hosted.mcp_server import Served, mcp_server
from tests.upstream.stub import dead_url, stub_server


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with mcp_server() as running:
        yield running


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_lists_and_calls_over_each_transport(served: Served, transport: str) -> None:
    url = served.http_url if transport == "http" else served.sse_url
    server = McpServer(url, {"X-Test": transport}, timeout=10)
    tools = {t["name"]: t for t in await list_tools(server)}
    assert set(tools) == {"add", "fail"}
    assert tools["add"]["description"] == "Add two integers."
    assert tools["add"]["input_schema"]["properties"].keys() == {"a", "b"}
    assert tools["add"]["annotations"]["readOnlyHint"] is True
    assert await call_tool(server, "add", {"a": 2, "b": 40}) == "42"
    assert any(h.get("x-test") == transport for h in served.headers)


async def test_a_failing_tool_is_a_tool_execution_error(served: Served) -> None:
    with pytest.raises(McpFailure) as caught:
        await call_tool(McpServer(served.http_url), "fail", {"reason": "because"})
    assert caught.value.error["type"] == "mcp_tool_execution_error"
    with pytest.raises(McpFailure) as unknown:
        await call_tool(McpServer(served.http_url), "nope", {})
    assert unknown.value.error["type"] in ("mcp_tool_execution_error", "mcp_protocol_error")


async def test_a_server_that_is_down_or_hangs_fails_in_time() -> None:
    with pytest.raises(McpFailure) as down:
        await list_tools(McpServer(dead_url().replace("/v1", "/mcp"), timeout=5))
    assert down.value.error["type"] == "http_error"
    with stub_server(lambda request: None) as silent:
        started = time.monotonic()
        with pytest.raises(McpFailure) as hung:
            await call_tool(McpServer(silent.base_url("mcp"), timeout=0.5), "add", {})
        assert time.monotonic() - started < 5
    assert hung.value.error == {
        "type": "http_error",
        "code": 504,
        "message": "The MCP server timed out.",
    }


def test_the_allow_list_holds_outbound_calls() -> None:
    loopback = ["127.0.0.1", "localhost", "::1"]
    check_url("http://127.0.0.1:9000/mcp", loopback, "tools[0].server_url")
    check_url("http://localhost/sse", loopback, "tools[0].server_url")
    check_url("https://mcp.example.com/mcp", ["mcp.example.com"], "p")
    check_url("https://mcp.example.com:8443/mcp", ["mcp.example.com:8443"], "p")
    check_url("https://anything.example/mcp", ["*"], "p")
    for url, allowed in [
        ("http://10.0.0.5/mcp", loopback),
        ("http://169.254.169.254/latest", loopback),
        ("https://mcp.example.com:9999/mcp", ["mcp.example.com:8443"]),
        ("file:///etc/passwd", ["*"]),
        ("not a url", ["*"]),
    ]:
        with pytest.raises(InvalidRequestError) as caught:
            check_url(url, allowed, "tools[0].server_url")
        assert caught.value.param == "tools[0].server_url"
