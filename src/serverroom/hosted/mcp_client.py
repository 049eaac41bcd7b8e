"""Calls to remote MCP servers, through the official ``mcp`` SDK.

Each operation opens its own session (streamable HTTP, or SSE for a URL ending in ``/sse``),
runs under one time limit, and closes it, so no state is held between requests. Failures come
back as ``McpFailure`` with the platform's error kinds (``http_error``, ``mcp_protocol_error``,
``mcp_tool_execution_error``); nothing here raises anything else. ``check_url`` holds outbound
calls to the hosts an operator allows, since the server, not the client, makes them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from serverroom.errors import InvalidRequestError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
Json = dict[str, Any]


@dataclass(frozen=True)
class McpServer:
    """Where one MCP server is and how to reach it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0


class McpFailure(Exception):
    """An MCP operation failed; ``error`` is the platform's ``mcp_call.error`` object."""

    def __init__(self, error: Json) -> None:
        super().__init__(error.get("message") or error["type"])
        self.error = error


def check_url(url: str, allowed: list[str], param: str) -> None:
    """400 unless ``url`` is http(s) on a host (or ``host:port``) in ``allowed`` ("*": any)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(
            f"Invalid 'server_url': {url!r} is not an http(s) URL.",
            param=param,
            code="invalid_value",
        )
    host = parts.hostname
    hostport = f"{host}:{parts.port}" if parts.port else host
    if "*" not in allowed and host not in allowed and hostport not in allowed:
        raise InvalidRequestError(
            f"MCP server URL {url!r} is not allowed on this server (allowed hosts:"
            f" {', '.join(allowed) or 'none'}; see tools.mcp_allowed_hosts).",
            param=param,
            code="invalid_value",
        )


@asynccontextmanager
async def _session(server: McpServer) -> AsyncIterator[ClientSession]:
    client = httpx2.AsyncClient(headers=server.headers, timeout=httpx2.Timeout(server.timeout))
    if urlsplit(server.url).path.rstrip("/").endswith("/sse"):
        transport = sse_client(
            server.url,
            headers=server.headers,
            timeout=server.timeout,
            sse_read_timeout=server.timeout,
        )
    else:
        transport = streamable_http_client(server.url, http_client=client)
    async with client, transport as streams, ClientSession(streams[0], streams[1]) as session:
        await session.initialize()
        yield session


def _failure(exc: BaseException) -> McpFailure:
    """The platform's error object for what went wrong (the first cause in a group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpFailure):
        return exc
    if isinstance(exc, MCPError):
        return McpFailure(
            {"type": "mcp_protocol_error", "code": exc.error.code, "message": str(exc)}
        )
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        return McpFailure({"type": "http_error", "code": status, "message": f"HTTP {status}"})
    if isinstance(exc, TimeoutError):
        return McpFailure(
            {"type": "http_error", "code": 504, "message": "The MCP server timed out."}
        )
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return McpFailure({"type": "http_error", "code": 502, "message": message})


async def list_tools(server: McpServer) -> list[Json]:
    """The server's tools as ``mcp_list_tools`` entries (name, description, input_schema,
    annotations); ``McpFailure`` if it cannot be reached or answers wrongly."""
    try:
        with anyio.fail_after(server.timeout):
            async with _session(server) as session:
                listed = await session.list_tools()
    except Exception as exc:  # every failure is the caller's McpFailure
        raise _failure(exc) from exc
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": tool.input_schema,
            "annotations": tool.annotations.model_dump(exclude_none=True, by_alias=True)
            if tool.annotations
            else None,
        }
        for tool in listed.tools
    ]


async def call_tool(server: McpServer, name: str, arguments: Json) -> str:
    """Run one tool; its text output (structured content as JSON). ``McpFailure`` if it
    fails, including a tool that reports an error (``mcp_tool_execution_error``)."""
    try:
        with anyio.fail_after(server.timeout):
            async with _session(server) as session:
                result = await session.call_tool(name, arguments)
    except Exception as exc:  # every failure is the caller's McpFailure
        raise _failure(exc) from exc
    content = [part.model_dump(mode="json", exclude_none=True) for part in result.content or []]
    if getattr(result, "is_error", False):
        raise McpFailure({"type": "mcp_tool_execution_error", "content": content})
    texts = [str(part.get("text", "")) for part in content if part.get("type") == "text"]
    if texts:
        return "\n".join(texts)
    structured = getattr(result, "structured_content", None)
    return json.dumps(structured if structured is not None else content)
