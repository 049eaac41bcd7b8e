"""Several serverroom revisions and llama-server, side by side, in alternating rounds.

For deciding whether a change helps on a noisy machine: every server runs at once with the
same settings as ``serve_bench.py`` (16 slots x 2048, 2 threads, batch 512), and each round
drives each server in turn (rotating who goes first) with ``--concurrency`` streaming clients
for ``--seconds``. It prints each server's median output tok/s and its ratio to llama-server.

    python bench/ab_rounds.py --revisions HEAD~1 HEAD --concurrency 1 16 --rounds 6

A revision is any git revision of this repository (its ``src/`` is exported to a temporary
directory) or ``work`` for the working tree. llama-server is started as by ``serve_bench.py``
(``--extra-buffers auto``: probed, ``--no-repack`` if the default settings crash); ``on`` /
``off`` are also passed to every revision as ``--engine.extra_buffers``, which revisions older
than that setting reject.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
from serve_bench import (
    GGUF_REF,
    HERE,
    PROMPTS,
    Server,
    build_llama_server,
    free_port,
    one_request,
    start_llama_server_probed,
)

ROOT = HERE.parent


def export(revision: str, into: Path) -> Path:
    """The ``src`` directory of ``revision`` (``work``: the working tree's), with its C
    extension built in place when the revision has one."""
    if revision == "work":
        return ROOT / "src"
    target = into / revision.replace("/", "_").replace("~", "-")
    target.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    wanted = [p for p in ("src", "setup.py", "pyproject.toml", "README.md") if p in listed]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, *wanted], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    if "setup.py" in wanted:
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=target,
            check=True,
            capture_output=True,
        )
    return target / "src"


def start_revision(name: str, src: Path, args: argparse.Namespace, data: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "SERVERROOM_DATA_DIR": str(data / name),
        "SERVERROOM_AUTH__MODE": "dev",
    }
    (data / name).mkdir()
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--engine.slots", str(args.slots), "--engine.slot_context", str(args.ctx)]
    cmd += ["--engine.threads", str(args.threads), "--engine.batch_size", str(args.batch)]
    cmd += ["--log_level", "warning"]
    if args.extra_buffers != "auto":
        cmd += ["--engine.extra_buffers", args.extra_buffers]
    with (data / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server(name, proc, port, "gpt-4.1")


async def timed_load(server: Server, concurrency: int, seconds: float, max_tokens: int) -> float:
    """Output tok/s of ``concurrency`` clients sending requests back to back for ``seconds``."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=2)
    end = time.perf_counter() + seconds
    total = 0

    async def worker(k: int) -> None:
        nonlocal total
        i = k
        while time.perf_counter() < end:
            _, tokens, _ = await one_request(client, server.model, PROMPTS[i % 8], max_tokens)
            total += tokens
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    await client.close()
    return total / (time.perf_counter() - started)


def main() -> None:
    from serverroom.catalog import locate_weights

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--revisions", nargs="+", default=["work"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--extra-buffers", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args()

    binary = build_llama_server()
    data = Path(tempfile.mkdtemp(prefix="sr-ab-"))
    print(f"logs and data in {data}", flush=True)
    servers = [start_revision(r, export(r, data / "src"), args, data) for r in args.revisions]
    servers.append(start_llama_server_probed(binary, locate_weights(GGUF_REF), args, data))
    try:
        for server in servers:
            server.wait()
            asyncio.run(timed_load(server, 4, 3, 16))  # warm-up
        for conc in args.concurrency:
            results: dict[str, list[float]] = {s.name: [] for s in servers}
            for rnd in range(args.rounds):
                shift = rnd % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    tps = asyncio.run(timed_load(server, conc, args.seconds, args.max_tokens))
                    results[server.name].append(tps)
            reference = statistics.median(results["llama-server"])
            for name, values in results.items():
                median = statistics.median(values)
                rounds = " ".join(f"{v:.1f}" for v in values)
                print(
                    f"c={conc:<3} {name:<14} median {median:6.1f} tok/s  "
                    f"ratio {median / reference:5.3f}   rounds: {rounds}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
