"""Does a batch use the capacity interactive traffic leaves idle, without slowing that traffic?

One serverroom (the bundled model, ``--slots`` slots). Three phases:

1. idle: ``--probes`` streamed interactive chat completions, one at a time: TTFT p50;
2. client: the batch's ``--lines`` requests sent by a client keeping ``--slots`` in flight
   (what an application would do instead of a batch): wall time;
3. batch: the same requests as a Batch API file (``batch.concurrency`` auto), from
   ``batches.create`` to ``completed``: wall time;
4. the batch again, while a prober sends interactive requests one at a time: its wall time,
   and their TTFT p50.

It prints batch / client wall time (alone, and beside the prober) and TTFT during the batch /
idle TTFT. Every request makes
exactly ``--max-tokens`` tokens (end of generation banned).

    python bench/batch_capacity.py --lines 300
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
from serve_bench import EOG_BAN, PROMPTS, Server, free_port, one_request  # type: ignore[import-not-found]


def start(args: argparse.Namespace, data: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--engine.slots", str(args.slots), "--engine.slot_context", "2048"]
    cmd += ["--batch.poll_seconds", "0.2", "--log_level", "warning"]
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(data), "SERVERROOM_AUTH__MODE": "dev"}
    with (data / "serverroom.log").open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server("serverroom", proc, port, "gpt-4.1")


def body(i: int, max_tokens: int) -> dict[str, object]:
    return {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": f"Item {i}. {PROMPTS[i % len(PROMPTS)]}"}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "logit_bias": EOG_BAN,
    }


async def probe(client: openai.AsyncOpenAI, server: Server, n: int | None, stop: asyncio.Event):
    """TTFTs of interactive requests one at a time: ``n`` of them, or until ``stop``."""
    ttfts: list[float] = []
    while (n is None and not stop.is_set()) or (n is not None and len(ttfts) < n):
        prompt = f"Question {len(ttfts)}: {PROMPTS[len(ttfts) % len(PROMPTS)]}"
        ttft, _, _ = await one_request(client, server.model, prompt, 8)
        ttfts.append(ttft)
        await asyncio.sleep(0.3)
    return ttfts


async def client_phase(client: openai.AsyncOpenAI, args: argparse.Namespace) -> float:
    queue = list(range(args.lines))

    async def worker() -> None:
        while queue:
            await client.chat.completions.create(**body(queue.pop(0), args.max_tokens))  # type: ignore[call-overload]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.slots)))
    return time.perf_counter() - started


async def batch_phase(
    client: openai.AsyncOpenAI, server: Server, args: argparse.Namespace, probing: bool
) -> tuple[float, list[float]]:
    lines = [
        json.dumps(
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body(i, args.max_tokens),
            }
        )
        for i in range(args.lines)
    ]
    upload = await client.files.create(
        file=("lines.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="batch"
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    prober = asyncio.create_task(probe(client, server, None if probing else 0, stop))
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        await asyncio.sleep(0.2)
        batch = await client.batches.retrieve(batch.id)
    elapsed = time.perf_counter() - started
    stop.set()
    ttfts = await prober
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == args.lines
    return elapsed, ttfts


async def run(server: Server, args: argparse.Namespace) -> None:
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="sk-bench", timeout=600, max_retries=2
    ) as client:
        await probe(client, server, 4, asyncio.Event())  # warm-up
        idle = await probe(client, server, args.probes, asyncio.Event())
        by_client = await client_phase(client, args)
        alone, _ = await batch_phase(client, server, args, probing=False)
        by_batch, during = await batch_phase(client, server, args, probing=True)
    idle_p50, during_p50 = statistics.median(idle), statistics.median(during)
    print(f"idle TTFT p50 {idle_p50 * 1000:.0f} ms ({len(idle)} requests)")
    print(f"{args.lines} requests from a client keeping {args.slots} in flight: {by_client:.1f} s")
    print(f"the same as a batch: {alone:.1f} s  ratio {alone / by_client:.2f}")
    print(
        f"the batch again, beside the interactive requests below: {by_batch:.1f} s"
        f"  ratio {by_batch / by_client:.2f}"
    )
    print(
        f"interactive TTFT p50 during the batch {during_p50 * 1000:.0f} ms ({len(during)}"
        f" requests)  ratio to idle {during_p50 / idle_p50:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="sr-batch-"))
    server = start(args, data)
    try:
        server.wait()
        asyncio.run(run(server, args))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
