"""What a gateway adds in front of an upstream: direct, through serverroom, through LiteLLM.

All three are driven in one run against the same upstream (by default ``stub_upstream.py``,
which answers at once, so what is measured is the gateway): the latency of a 1-token chat
request, sequential, p50/p99, in alternating rounds; then requests/s at 16 and 64 concurrent
clients. serverroom runs its real request path: auth (open on loopback), admission, the
generation layer, the usage ledger (SQLite). LiteLLM's proxy runs from its own virtualenv
(``pip install 'litellm[proxy]'``); without it that column is left out.

    python bench/upstream_overhead.py --litellm /tmp/litellm-venv/bin/litellm
    python bench/upstream_overhead.py --upstream http://127.0.0.1:8080/v1 --model any
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from _net import free_port, wait_ready

HERE = Path(__file__).resolve().parent
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def start(
    cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
    )


def serverroom(tmp: Path, upstream: str, model: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    catalog = tmp / "models.toml"
    catalog.write_text(
        f'[[model]]\nid = "bench"\nbackend = "upstream"\nbase_urls = ["{upstream}"]\n'
        f'upstream_model = "{model}"\ncontext_length = 8192\n'
    )
    env = {
        "SERVERROOM_DATA_DIR": str(tmp / "serverroom"),
        "SERVERROOM_CATALOG_FILE": str(catalog),
        "SERVERROOM_DEFAULT_MODEL": "bench",
        "SERVERROOM_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    proc = start(cmd, env, tmp / "serverroom.log")
    wait_ready(f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}/v1"


def litellm(
    tmp: Path, binary: str, upstream: str, model: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n"
        f"      model: openai/{model}\n      api_base: {upstream}\n      api_key: sk-none\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    cmd = [binary, "--config", str(config), "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": "sk-bench"}  # the key clients send
    proc = start(cmd, env, tmp / "litellm.log")
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness")
    return proc, f"http://127.0.0.1:{port}/v1"


def sequential(client: httpx.Client, base: str, model: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        reply = client.post(f"{base}/chat/completions", json={**BODY, "model": model})
        out.append(time.perf_counter() - started)
        reply.raise_for_status()
    return out


async def concurrent(base: str, model: str, clients: int, seconds: float) -> float:
    """Requests/s of ``clients`` keep-alive connections each sending one request after
    another. The load comes from aiohttp (C-parsed HTTP): with httpx's pool the client
    itself was the limit at 64 connections, for every target alike."""
    done = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=AUTH) as client:
        end = time.perf_counter() + seconds
        body = {**BODY, "model": model}

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with client.post(f"{base}/chat/completions", json=body) as reply:
                    reply.raise_for_status()
                    await reply.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - started)


AUTH = {"Authorization": "Bearer sk-bench"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", help="an OpenAI-compatible base URL (default: the stub)")
    parser.add_argument("--model", default="stub", help="the model name the upstream knows")
    parser.add_argument("--litellm", default=shutil.which("litellm"), help="LiteLLM's CLI")
    parser.add_argument("--requests", type=int, default=600, help="sequential requests each")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            upstream = args.upstream
            if upstream is None:
                port = free_port()
                procs.append(
                    start([sys.executable, str(HERE / "stub_upstream.py"), "--port", str(port)])
                )
                upstream = f"http://127.0.0.1:{port}/v1"
                wait_ready(f"{upstream}/models")
            targets = {"direct": (upstream, args.model)}
            proc, url = serverroom(tmp, upstream, args.model)
            procs.append(proc)
            targets["serverroom"] = (url, "bench")
            if args.litellm:
                proc, url = litellm(tmp, args.litellm, upstream, args.model)
                procs.append(proc)
                targets["litellm"] = (url, "bench")
            else:
                print("LiteLLM not found (--litellm): its column is left out")
            run(targets, args)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)


def run(targets: dict[str, tuple[str, str]], args: argparse.Namespace) -> None:
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    with httpx.Client(timeout=60, headers=AUTH) as client:
        for base, model in targets.values():
            sequential(client, base, model, 50)  # warm up
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (base, model) in targets.items():
                latencies[name] += sequential(client, base, model, per_round)
    direct = statistics.median(latencies["direct"]) * 1000
    print(f"\n1-token chat request, sequential ({args.requests} each, {args.rounds} rounds), ms")
    print(f"{'target':<12}{'p50':>9}{'p99':>9}{'added p50':>12}{'added p99':>12}")
    direct99 = pct(latencies["direct"], 0.99)
    for name, values in latencies.items():
        p50, p99 = statistics.median(values) * 1000, pct(values, 0.99)
        print(f"{name:<12}{p50:>9.2f}{p99:>9.2f}{p50 - direct:>12.2f}{p99 - direct99:>12.2f}")
    print(f"\nrequests/s ({args.seconds:.0f} s each)")
    header = "".join(f"{n:>12}" for n in targets)
    print(f"{'clients':<10}{header}" + ("  serverroom/litellm" if "litellm" in targets else ""))
    for clients in (16, 64):
        rates = {
            n: asyncio.run(concurrent(b, m, clients, args.seconds)) for n, (b, m) in targets.items()
        }
        line = f"{clients:<10}" + "".join(f"{rates[n]:>12.0f}" for n in targets)
        if "litellm" in rates:
            line += f"  {rates['serverroom'] / rates['litellm']:>18.2f}"
        print(line)


if __name__ == "__main__":
    main()
