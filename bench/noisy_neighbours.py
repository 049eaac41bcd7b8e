"""Throughput beside CPU hogs: serverroom with its adaptive thread count, serverroom with a fixed
count, and llama.cpp's llama-server with the same fixed count, on a quiet machine and then with
``--hogs`` busy-looping processes beside them.

    python bench/noisy_neighbours.py --rounds 3              # builds llama-server first if needed
    python bench/noisy_neighbours.py --no-llama-server

Each round sends every server one streamed completion of ``--max-tokens`` tokens (end of
generation banned, so all do the same work), in turn; decode speed is the tokens after the
first over the time from the first to the last. It prints the medians, each server's loaded /
quiet ratio, and the ratios against llama-server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import openai
from serve_bench import (  # type: ignore[import-not-found]
    GGUF_REF,
    Server,
    build_llama_server,
    free_port,
    one_request,
    start_llama_server,
)

from serverroom.catalog import locate_weights

HOG = "while True: pass"


def start_serverroom(data: Path, threads: int | None) -> Server:
    """serverroom with ``threads`` fixed, or (None) choosing its own count."""
    port = free_port()
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--engine.slots", "1", "--engine.slot_context", "2048", "--log_level", "warning"]
    if threads is not None:
        cmd += ["--engine.threads", str(threads), "--engine.adapt_threads", "false"]
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(data), "SERVERROOM_AUTH__MODE": "dev"}
    with (data / "serverroom.log").open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    name = "serverroom adaptive" if threads is None else f"serverroom {threads} threads"
    return Server(name, proc, port, "gpt-4.1")


async def decode_speed(server: Server, max_tokens: int) -> float:
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="sk-bench", timeout=900
    ) as client:
        ttft, tokens, total = await one_request(client, server.model, "Tell a story.", max_tokens)
    return (tokens - 1) / max(total - ttft, 1e-9)


async def phase(servers: list[Server], rounds: int, max_tokens: int) -> dict[str, dict[str, float]]:
    """Each server's median and slowest decode speed over ``rounds`` requests."""
    speeds: dict[str, list[float]] = {s.name: [] for s in servers}
    for r in range(rounds):
        for server in servers[r % len(servers) :] + servers[: r % len(servers)]:
            speeds[server.name].append(await decode_speed(server, max_tokens))
    return {
        name: {"median": round(statistics.median(v), 1), "slowest": round(min(v), 1)}
        for name, v in speeds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--no-llama-server", action="store_true")
    args = parser.parse_args()
    gguf = locate_weights(GGUF_REF)
    data = Path(tempfile.mkdtemp(prefix="noisy-"))
    servers = [
        start_serverroom(data / "adaptive", None),
        start_serverroom(data / "fixed", args.threads),
    ]
    if not args.no_llama_server:
        llama = argparse.Namespace(threads=args.threads, slots=1, ctx=2048, batch=512)
        binary = build_llama_server()
        servers.append(start_llama_server(binary, gguf, llama, data / "llama.log", repack=True))
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for server in servers:
            server.wait()
        asyncio.run(phase(servers, 1, 16))  # warm-up
        quiet = asyncio.run(phase(servers, args.rounds, args.max_tokens))
        print(json.dumps({"quiet": quiet}), flush=True)
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
        loaded = asyncio.run(phase(servers, args.rounds, args.max_tokens))
        report: dict[str, object] = {
            "threads": args.threads,
            "hogs": args.hogs,
            "max_tokens": args.max_tokens,
            "quiet_tok_s": quiet,
            "loaded_tok_s": loaded,
            "loaded_over_quiet": {
                k: round(loaded[k]["median"] / quiet[k]["median"], 3) for k in quiet
            },
        }
        if "llama-server" in quiet:
            report["vs_llama_server_median"] = {
                name: {k: round(v[k]["median"] / v["llama-server"]["median"], 2) for k in v}
                for name, v in (("quiet", quiet), ("loaded", loaded))
            }
        print(json.dumps(report, indent=2))
    finally:
        for hog in hogs:
            hog.kill()
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
