"""The header read timeout: a real uvicorn server on the protocol, raw sockets as clients.

Each test runs against both of uvicorn's HTTP/1.1 implementations: h11 (the one serverroom
installs) and httptools (only where it is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from serverroom import server_protocol
from serverroom.server_protocol import H11HeaderTimeout, HeaderTimeout, http_protocol

TIMEOUT = 0.5
HEAD = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"

_HTTPTOOLS = importlib.util.find_spec("httptools") is not None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the body; ``/slow`` answers after 3 timeouts, ``/stream`` over 3 timeouts."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(3 * TIMEOUT)
    chunks = [b"a", b"b", b"c"] if path == "/stream" else [body or b"ok"]
    length = str(sum(len(c) for c in chunks)).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    for chunk in chunks:
        if path == "/stream":
            await asyncio.sleep(TIMEOUT)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _bases() -> list[Any]:
    httptools = pytest.param(
        "httptools", marks=pytest.mark.skipif(not _HTTPTOOLS, reason="httptools not installed")
    )
    return ["h11", httptools]


@pytest.fixture(params=_bases())
async def port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """A uvicorn server on the protocol (header timeout ``TIMEOUT``), on a free port."""
    base: type[HeaderTimeout] = H11HeaderTimeout
    if request.param == "httptools":
        base = server_protocol._httptools_protocol()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=http_protocol(TIMEOUT, base), log_level="warning", timeout_keep_alive=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    """One reply: its headers, then the body by ``content-length``."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def _until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took (seconds)."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), 10 * TIMEOUT)
    return data, time.monotonic() - started


def _is_408(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    error = json.loads(body)["error"]
    return head.startswith(b"HTTP/1.1 408 ") and error == {
        "message": error["message"],
        "type": "invalid_request_error",
        "param": None,
        "code": "request_timeout",
    }


async def test_a_connection_that_sends_nothing_is_closed_silently(port: int) -> None:
    reader, _ = await asyncio.open_connection("127.0.0.1", port)
    data, waited = await _until_closed(reader)
    assert data == b"" and 0.8 * TIMEOUT < waited < 3 * TIMEOUT


async def test_partial_headers_are_a_408_and_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
    data, waited = await _until_closed(reader)
    assert _is_408(data), data
    assert b"connection: close" in data and 0.8 * TIMEOUT < waited < 3 * TIMEOUT


async def test_trickled_header_bytes_do_not_move_the_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def trickle() -> None:
        for byte in b"POST /echo HTTP/1.1\r\nHost: x\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(TIMEOUT / 5)

    trickling = asyncio.create_task(trickle())
    data, waited = await _until_closed(reader)
    trickling.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await trickling
    assert _is_408(data), data
    assert 0.8 * TIMEOUT < waited < 3 * TIMEOUT


async def test_slow_and_streaming_responses_are_not_timed_out(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path, body in ((b"/slow", b"hi"), (b"/stream", b"abc")):
        writer.write(HEAD.replace(b"/echo", path))
        reply = await asyncio.wait_for(_read_reply(reader), 10 * TIMEOUT)
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(body), reply
    writer.close()


async def test_a_body_slower_than_the_header_timeout_is_not_its_business(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
    for byte in b"abc":
        await asyncio.sleep(TIMEOUT * 0.6)
        writer.write(bytes([byte]))
    reply = await asyncio.wait_for(_read_reply(reader), 10 * TIMEOUT)
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"abc"), reply
    writer.close()


async def test_keep_alive_requests_after_a_pause_get_a_fresh_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD)
    assert (await _read_reply(reader)).endswith(b"hi")
    await asyncio.sleep(2 * TIMEOUT)  # idle: uvicorn's keep-alive timeout (5 s) applies
    writer.write(HEAD[:10])
    await asyncio.sleep(TIMEOUT / 2)  # slow but in time
    writer.write(HEAD[10:])
    assert (await asyncio.wait_for(_read_reply(reader), 10 * TIMEOUT)).endswith(b"hi")
    writer.write(HEAD[:10])  # the third request stops halfway through its headers
    data, waited = await _until_closed(reader)
    assert _is_408(data), data
    assert 0.8 * TIMEOUT < waited < 3 * TIMEOUT


def test_the_reply_is_the_platforms_envelope() -> None:
    reply = server_protocol.timeout_reply(2)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 408 Request Timeout"
    assert f"content-length: {len(body)}".encode() in head
    assert json.loads(body)["error"]["message"].endswith("2 seconds (requests.header_timeout).")
    assert _is_408(reply)


def test_the_implementation_is_uvicorns_auto_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = http_protocol(7)
    assert chosen.header_timeout == 7 and HeaderTimeout.header_timeout == 10
    assert issubclass(chosen, H11HeaderTimeout) != _HTTPTOOLS
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert issubclass(http_protocol(7), H11HeaderTimeout)
