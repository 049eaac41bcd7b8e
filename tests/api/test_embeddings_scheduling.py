"""The embedding registry's priority lock: interactive work (0) goes before batch work (1)."""

from __future__ import annotations

import asyncio

from serverroom.engine.embeddings.registry import _PriorityLock


async def test_priority_lock_serves_interactive_first() -> None:
    lock = _PriorityLock()
    order: list[str] = []
    await lock.acquire(0)  # a forward pass is running

    async def job(name: str, priority: int) -> None:
        await lock.acquire(priority)
        order.append(name)
        lock.release()

    tasks = [asyncio.create_task(job("batch-1", 1)), asyncio.create_task(job("batch-2", 1))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(job("interactive", 0)))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["interactive", "batch-1", "batch-2"]


async def test_cancelled_waiter_does_not_hold_the_lock() -> None:
    lock = _PriorityLock()
    await lock.acquire(0)
    waiter = asyncio.create_task(lock.acquire(1))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    lock.release()
    await asyncio.wait_for(lock.acquire(0), 1)
