"""``primed``: errors before admission are raised, the stream may start before the first item;
``EventStream``: keep-alive comments only when the stream is quiet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from serverroom.sse import KEEPALIVE, primed, sse_response


async def _source(
    started: asyncio.Event, log: list[str], *, fail: bool = False
) -> AsyncIterator[int]:
    try:
        if fail:
            raise ValueError("refused before admission")
        started.set()  # admitted
        await asyncio.sleep(0.05)  # the prompt is being computed
        yield 1
        yield 2
    finally:
        log.append("closed")


async def test_returns_once_started_and_yields_everything() -> None:
    started, log = asyncio.Event(), []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    events = await primed(_source(started, log), started)
    assert loop.time() - t0 < 0.04  # before the first item exists
    assert [item async for item in events] == [1, 2]
    assert log == ["closed"]


async def test_error_before_admission_is_raised() -> None:
    started, log = asyncio.Event(), []
    with pytest.raises(ValueError):
        await primed(_source(started, log, fail=True), started)
    assert log == ["closed"]


async def test_a_disconnect_before_the_first_item_closes_the_source() -> None:
    started, log = asyncio.Event(), []
    events = await primed(_source(started, log), started)
    with pytest.raises(TimeoutError):  # the client goes away while the prompt is computed
        await asyncio.wait_for(events.__anext__(), 0.01)
    await events.aclose()  # type: ignore[attr-defined]
    assert log == ["closed"]


async def test_without_started_it_waits_for_the_first_item() -> None:
    started, log = asyncio.Event(), []
    events = await primed(_source(started, log))
    assert [item async for item in events] == [1, 2]


async def test_empty_source() -> None:
    async def empty() -> AsyncIterator[int]:
        return
        yield

    events = await primed(empty(), asyncio.Event())
    assert [item async for item in events] == []


# ----- EventStream: keep-alive comments without a timer per chunk -----


async def _drive(response: Any, *, disconnect_after: float | None = None) -> list[bytes]:
    """Run an ASGI response; return the body messages it sent."""
    sent: list[bytes] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if disconnect_after is None:
            await gone.wait()
        else:
            await asyncio.sleep(disconnect_after)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET"}
    await response(scope, receive, send)
    gone.set()
    return sent


async def _slow(log: list[str]) -> AsyncIterator[bytes]:
    try:
        yield b"data: 1\n\n"
        await asyncio.sleep(0.25)  # quiet: keep-alives go out meanwhile
        yield b"data: 2\n\n"
    finally:
        log.append("closed")


async def test_quiet_stream_gets_keepalive_comments_between_events() -> None:
    log: list[str] = []
    sent = await _drive(sse_response(_slow(log), keepalive=0.05))
    assert sent[0] == b"data: 1\n\n"
    assert sent[-2:] == [b"data: 2\n\n", b""]
    between = sent[1:-2]
    assert 2 <= len(between) <= 6 and set(between) == {KEEPALIVE}
    assert log == ["closed"]


async def test_busy_stream_gets_no_keepalive() -> None:
    async def fast() -> AsyncIterator[bytes]:
        for i in range(200):
            await asyncio.sleep(0.001)
            yield f"data: {i}\n\n".encode()

    sent = await _drive(sse_response(fast(), keepalive=0.05))
    assert KEEPALIVE not in sent
    assert sent[:-1] == [f"data: {i}\n\n".encode() for i in range(200)]


async def test_disconnect_stops_the_stream_and_closes_the_body() -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                await asyncio.sleep(0.01)
                yield b"data: x\n\n"
        finally:
            log.append("closed")

    response = sse_response(endless(), keepalive=0.05)
    await asyncio.wait_for(_drive(response, disconnect_after=0.1), timeout=2)
    for _ in range(20):  # the body generator is finalised by the loop's asyncgen hooks
        if log:
            break
        await asyncio.sleep(0.01)
    assert log == ["closed"]
