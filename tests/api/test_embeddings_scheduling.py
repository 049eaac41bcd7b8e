"""The embedding registry's scheduling: interactive work (0) goes before batch work (1), and
concurrent small requests share one forward pass."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from serverroom.engine.embeddings.registry import SLICE, EmbeddingRegistry, _PriorityLock


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


class _Counting:
    """An embedding engine whose passes take a while and are counted; row = [len(text)]."""

    dimensions, max_tokens, vocab_size = 1, 512, 100

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def tokenize(self, text: str, limit: int | None = None) -> list[int]:
        return [1] * len(text)

    def embed(self, items: Any) -> Any:
        import time

        time.sleep(0.05)
        self.calls.append(len(items))
        if self.fail:
            raise RuntimeError("the pass failed")
        return np.array([[float(len(item))] for item in items], dtype=np.float32)


async def test_concurrent_small_requests_share_a_pass() -> None:
    registry = EmbeddingRegistry()
    engine = _Counting()
    texts = [["a" * (i + 1)] * (i % 3 + 1) for i in range(12)]
    results = await asyncio.gather(*(registry.embed(engine, t) for t in texts))  # type: ignore[arg-type]
    for text, rows in zip(texts, results, strict=True):
        assert rows.tolist() == [[float(len(item))] for item in text]  # each its own rows
    assert sum(engine.calls) == sum(len(t) for t in texts)
    assert len(engine.calls) <= 3  # one alone, then the rest merged (not 12 passes)
    assert max(engine.calls) <= SLICE


async def test_a_merged_pass_fails_every_request_and_a_leaver_harms_none() -> None:
    registry = EmbeddingRegistry()
    failing = _Counting(fail=True)
    outcomes = await asyncio.gather(
        *(registry.embed(failing, ["x"]) for _ in range(4)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    engine = _Counting()
    tasks = [asyncio.create_task(registry.embed(engine, ["ab"])) for _ in range(5)]  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    tasks[0].cancel()  # the first pass's leader leaves mid-pass
    tasks[2].cancel()  # a waiting one leaves too
    done = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [d for i, d in enumerate(done) if i not in (0, 2)]
    assert all(d.tolist() == [[2.0]] for d in kept)  # type: ignore[union-attr]
    await asyncio.wait_for(registry.embed(engine, ["abc"]), 2)  # the lock is free again  # type: ignore[arg-type]
    await registry.close()
