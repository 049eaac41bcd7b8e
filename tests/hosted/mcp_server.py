"""A real MCP server for tests: the ``mcp`` SDK's ``MCPServer`` (FastMCP in the 1.x SDK) with
two tools, served over streamable HTTP and over SSE on free loopback ports, each by a uvicorn
of its own in a thread. ``calls`` records every call the tools received, with the request's
headers, so a test can see what the server sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Served:
    """Where the test server listens, and what its tools were asked."""

    http_url: str = ""
    sse_url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _server(served: Served) -> MCPServer:
    server = MCPServer("serverroom-test")

    @server.tool(annotations={"readOnlyHint": True})
    def add(a: int, b: int) -> int:
        """Add two integers."""
        served.calls.append({"name": "add", "a": a, "b": b})
        return a + b

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, with the reason given."""
        served.calls.append({"name": "fail", "reason": reason})
        raise ValueError(f"failed on purpose: {reason}")

    return server


class _Headers:
    """ASGI middleware keeping each HTTP request's headers (to see what serverroom sent)."""

    def __init__(self, app: ASGIApp, served: Served) -> None:
        self.app, self.served = app, served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.served.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(app: ASGIApp) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the MCP test server did not start"
        time.sleep(0.02)
    return server, thread, port


@contextmanager
def mcp_server() -> Iterator[Served]:
    """The test server, over both transports, for the length of the block."""
    served = Served()
    mcp = _server(served)
    http_app = _Headers(mcp.streamable_http_app(stateless_http=True, json_response=True), served)
    sse_app = _Headers(_server(served).sse_app(), served)
    running = [_start(http_app), _start(sse_app)]
    served.http_url = f"http://127.0.0.1:{running[0][2]}/mcp"
    served.sse_url = f"http://127.0.0.1:{running[1][2]}/sse"
    try:
        yield served
    finally:
        for server, thread, _ in running:
            server.should_exit = True
            thread.join(10)
