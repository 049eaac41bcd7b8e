"""What an engine in its own process would cost per token: a pipe hop for each decode step.

If the engine ran in a supervised child process (so a native fault killed only the child), every
decode step's sampled tokens would cross a process boundary to the API process's event loop.
This measures that hop as it would be done: one pickled message per step holding every
sequence's (request id, token, logprob), sent over a ``multiprocessing`` pipe and read by an
asyncio loop with ``add_reader``; the per-step cost is printed next to the measured decode
step of the bundled model, for 1, 4 and 16 streams.

    python bench/ipc_cost.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from multiprocessing.connection import Connection

# Decode step times of SmolLM2-135M Q4_1 on the 2-core development machine, from serve_bench's
# output rates (docs/performance.md): 95 tok/s at 1 stream, 143 at 4, 210 at 16.
STEP_MS = {1: 1000 / 95, 4: 4000 / 143, 16: 16000 / 210}


def _producer(conn: Connection, steps: int, streams: int) -> None:
    events = [(f"req_{i:024d}", 1234 + i, -0.25) for i in range(streams)]
    for _ in range(steps):
        conn.send(events)
    conn.send(None)
    conn.close()


async def _consume(conn: Connection) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    queues: dict[str, asyncio.Queue[tuple[int, float]]] = {}
    count = 0

    def readable() -> None:
        nonlocal count
        while conn.poll():
            events = conn.recv()
            if events is None:
                loop.remove_reader(conn.fileno())
                done.set_result(count)
                return
            for request_id, token, logprob in events:
                queue = queues.setdefault(request_id, asyncio.Queue())
                queue.put_nowait((token, logprob))
                queue.get_nowait()
            count += 1

    loop.add_reader(conn.fileno(), readable)
    return await done


def measure(steps: int, streams: int) -> float:
    """Microseconds per decode step spent moving its events across the process boundary."""
    ours, theirs = mp.Pipe(duplex=False)
    child = mp.get_context("spawn").Process(target=_producer, args=(theirs, steps, streams))
    started = time.perf_counter()
    child.start()
    theirs.close()
    received = asyncio.run(_consume(ours))
    elapsed = time.perf_counter() - started
    child.join()
    assert received == steps
    return elapsed / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    print("streams  us/step (IPC)  ms/step (decode)  IPC share")
    for streams, step_ms in STEP_MS.items():
        us = measure(args.steps, streams)
        print(f"{streams:7d}  {us:13.1f}  {step_ms:16.1f}  {us / (step_ms * 1000):9.2%}")


if __name__ == "__main__":
    main()
