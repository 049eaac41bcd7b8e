"""``primed``: errors before admission are raised, the stream may start before the first item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from serverroom.sse import primed


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
