"""Admission control shared by engines: a fixed number of slots and a bounded wait queue.

When every slot is busy a request waits; when the queue is full too it is refused at once
with ``EngineOverloadedError`` (503 with ``retry-after``) so the SDK backs off and retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from serverroom.errors import EngineOverloadedError


class SlotGate:
    def __init__(self, slots: int, max_queue: int) -> None:
        self._semaphore = asyncio.Semaphore(slots)
        self._slots = slots
        self._max_queue = max_queue
        self._waiting = 0
        self._busy = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def capacity(self) -> int:
        return self._slots + self._max_queue

    def room(self) -> int:
        return max(0, self.capacity - self._busy - self._waiting)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._semaphore.locked() and self._waiting >= self._max_queue:
            raise overloaded()
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._semaphore.release()


def overloaded() -> EngineOverloadedError:
    return EngineOverloadedError(
        "The engine is currently overloaded, please try again later.",
        headers={"retry-after": "1", "retry-after-ms": "1000"},
    )
