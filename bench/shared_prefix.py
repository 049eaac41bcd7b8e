"""One long system prompt, many users' short questions: serverroom against llama-server.

The production shape: every request is new, but all of them start with the same system prompt
(``--system-words`` words, about 1,500 tokens by default). ``--clients`` clients (16) keep one
streamed chat completion each in flight. Servers, all on the same GGUF, threads and slots:

* serverroom with one KV stream per slot (``engine.kv_unified false``): a new request's prefix
  is copied from another slot's cache when its own slot lacks it;
* serverroom with one unified KV buffer (``engine.kv_unified true``): slots share the prefix's
  cells (``llama_memory_seq_cp`` tags them with a second sequence id, copying nothing);
* llama-server with ``--cache-reuse 256`` and one stream per slot, and with ``--kv-unified``
  (``-kvu``, with ``--no-cache-idle-slots``: otherwise it moves idle slots out to its RAM prompt
  cache and back for every request).

Per server and round, every round with a new revision of the system prompt: a cold burst
(``--clients`` requests at once, nothing cached: its TTFT p50 is reported), then ``--requests``
measured ones. It prints aggregate output tok/s, TTFT p50/p90, the prefix-cache hit rate
(cached prompt tokens over prompt tokens, as each server reports them in ``usage``), the KV
cells in use after the measured requests (serverroom's ``serverroom_engine_kv_cache_tokens``,
where cells the slots share count once; llama-server's ``/slots``: the tokens each slot holds,
which it never shares), and the peak resident set, then the ratios against the faster
llama-server. Both allocate (and clear) their whole KV buffers at start, so memory use shows in
the cells, not the resident set.

    python bench/shared_prefix.py --rounds 2        # builds llama-server first if needed
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
from serve_bench import (  # type: ignore[import-not-found]
    EOG_BAN,
    GGUF_REF,
    Server,
    build_llama_server,
    free_port,
    pct,
)

from serverroom.catalog import locate_weights

TOPICS = [
    "refunds", "shipping times", "damaged parcels", "gift cards", "account security",
    "password resets", "invoices", "subscriptions", "warranty claims", "store opening hours",
    "loyalty points", "price matching", "international orders", "returns without a receipt",
]  # fmt: skip
QUESTIONS = [
    "Can I return a jacket I bought last week?",
    "How long does delivery to Lisbon take?",
    "My parcel arrived crushed, what now?",
    "Do gift cards expire?",
    "Someone logged into my account, help!",
    "How do I change my password?",
    "Where can I download my invoice?",
    "How do I cancel my subscription?",
    "My kettle stopped working after two months.",
    "Are you open on Sundays?",
]


def system_prompt(words: int) -> str:
    """A support agent's policy of about ``words`` words, the same for every request."""
    rules = ["You are the support assistant of Northwind Supplies. Follow these rules."]
    count = 1
    while sum(len(r.split()) for r in rules) < words:
        topic = TOPICS[count % len(TOPICS)]
        rules.append(
            f"Rule {count}: when a customer asks about {topic}, answer politely, quote the"
            f" relevant section {count % 7 + 1}.{count % 5 + 1} of the handbook, offer to open"
            f" a ticket numbered NW-{1000 + count * 37}, and never promise anything about"
            f" {TOPICS[(count * 3) % len(TOPICS)]} without checking the order history first."
        )
        count += 1
    return "\n".join(rules)


@dataclass
class Tally:
    tokens: int = 0
    prompt: int = 0
    cached: int = 0
    ttfts: list[float] = field(default_factory=list)


async def ask(client: openai.AsyncOpenAI, server: Server, system: str, i: int, n: int, t: Tally):
    started = time.perf_counter()
    ttft = 0.0
    stream = await client.chat.completions.create(
        model=server.model,
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": f"Customer #{i}: {QUESTIONS[i % len(QUESTIONS)]}"},
        ],
        stream=True,
        max_tokens=n,
        temperature=0.7,
        logit_bias=EOG_BAN,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and not ttft:
            ttft = time.perf_counter() - started
        if chunk.usage is not None:
            t.tokens += chunk.usage.completion_tokens
            t.prompt += chunk.usage.prompt_tokens
            details = chunk.usage.prompt_tokens_details
            cached = details.cached_tokens if details is not None else None
            if cached is None:  # llama-server's own field
                cached = ((chunk.model_extra or {}).get("timings") or {}).get("cache_n", 0)
            t.cached += int(cached or 0)
    t.ttfts.append(ttft)


async def load(
    server: Server, system: str, clients: int, requests: int, n: int, first: int
) -> tuple[float, Tally]:
    """Aggregate output tok/s and the tally of ``requests`` requests from ``clients`` clients
    (request numbers from ``first`` on, so every question is new)."""
    tally = Tally()
    queue = list(range(first, first + requests))
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="sk-bench", max_retries=2, timeout=600
    ) as client:

        async def worker() -> None:
            while queue:
                await ask(client, server, system, queue.pop(0), n, tally)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
    return tally.tokens / (time.perf_counter() - started), tally


def start_serverroom(args: argparse.Namespace, data: Path, unified: bool) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--engine.slots", str(args.clients), "--engine.slot_context", str(args.ctx)]
    cmd += ["--engine.threads", str(args.threads), "--engine.batch_size", str(args.batch)]
    cmd += ["--engine.kv_unified", str(unified).lower(), "--log_level", "warning"]
    home = data / ("serverroom-unified" if unified else "serverroom-streams")
    home.mkdir(parents=True)
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(home), "SERVERROOM_AUTH__MODE": "dev"}
    with (home / "serverroom.log").open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    name = "serverroom unified" if unified else "serverroom streams"
    return Server(name, proc, port, "gpt-4.1")


def start_llama_server(
    binary: Path, gguf: Path, args: argparse.Namespace, data: Path, unified: bool
) -> Server:
    port = free_port()
    cmd = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["-t", str(args.threads), "-tb", str(args.threads), "-np", str(args.clients)]
    cmd += ["-c", str(args.ctx * args.clients), "-b", str(args.batch), "-ub", str(args.batch)]
    cmd += ["--cache-reuse", "256", "--no-webui", "--log-file", str(data / f"llama-{port}.log")]
    if unified:
        cmd += ["-kvu", "--no-cache-idle-slots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    name = "llama-server -kvu" if unified else "llama-server streams"
    return Server(name, proc, port, "smollm2")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64, help="measured requests per round")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--system-words", type=int, default=1100)
    parser.add_argument("--ctx", type=int, default=2560, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--only", nargs="*", help="server names to run (default: all four)")
    args = parser.parse_args()

    gguf = locate_weights(GGUF_REF)
    binary = build_llama_server()
    data = Path(tempfile.mkdtemp(prefix="sr-prefix-"))
    print(f"logs in {data}", flush=True)
    system = system_prompt(args.system_words)
    servers = [
        start_serverroom(args, data, unified=False),
        start_serverroom(args, data, unified=True),
        start_llama_server(binary, gguf, args, data, unified=True),
        start_llama_server(binary, gguf, args, data, unified=False),
    ]
    if args.only:
        for server in [s for s in servers if s.name not in args.only]:
            server.stop()
            servers.remove(server)
    try:
        results = measure(servers, system, args)
    finally:
        for server in servers:
            server.stop()
    report(results, args)


@dataclass
class Outcome:
    rates: list[float] = field(default_factory=list)  # tok/s per round
    steady: Tally = field(default_factory=Tally)
    cold: list[float] = field(default_factory=list)  # TTFTs of the cold bursts
    cells: list[int] = field(default_factory=list)  # KV cells in use after each round
    peak_kib: int = 0


def kv_cells(server: Server) -> int:
    """KV cells the server holds now (see the module's docstring)."""
    if server.name.startswith("serverroom"):
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("serverroom_engine_kv_cache_tokens{")
            )
        )
    slots = httpx.get(f"http://127.0.0.1:{server.port}/slots", timeout=10).json()
    return sum(
        s.get("n_prompt_tokens", 0) + s.get("next_token", [{}])[0].get("n_decoded", 0)
        for s in slots
    )


def measure(servers: list[Server], system: str, args: argparse.Namespace) -> dict[str, Outcome]:
    for server in servers:
        server.wait()
    results = {s.name: Outcome() for s in servers}
    for rnd in range(args.rounds):
        revised = f"Policy revision {rnd + 1}.\n{system}"  # nothing cached from the last round
        order = servers if rnd % 2 == 0 else servers[::-1]
        for server in order:
            out = results[server.name]
            first = (rnd + 1) * 100_000
            _, cold = asyncio.run(load(server, revised, args.clients, args.clients, 8, first))
            first += args.clients
            tps, tally = asyncio.run(
                load(server, revised, args.clients, args.requests, args.max_tokens, first)
            )
            out.rates.append(tps)
            out.cold.extend(cold.ttfts)
            out.cells.append(kv_cells(server))
            for name in ("tokens", "prompt", "cached"):
                setattr(out.steady, name, getattr(out.steady, name) + getattr(tally, name))
            out.steady.ttfts.extend(tally.ttfts)
            print(
                f"round {rnd + 1} {server.name:<21} {tps:7.1f} tok/s  TTFT p50"
                f" {pct(tally.ttfts, 0.5) * 1000:6.0f} ms, cold burst"
                f" {pct(cold.ttfts, 0.5) * 1000:6.0f} ms  prompt"
                f" {tally.prompt / args.requests:.0f} tokens,"
                f" cached {tally.cached / max(tally.prompt, 1):.1%}, KV cells {out.cells[-1]}",
                flush=True,
            )
    for server in servers:
        results[server.name].peak_kib = server.rss_kb("VmHWM")
    return results


def report(results: dict[str, Outcome], args: argparse.Namespace) -> None:
    print(
        f"\n== {args.clients} clients, every request new after a shared system prompt"
        f" (median of {args.rounds} rounds) =="
    )
    for name, out in results.items():
        print(
            f"{name:<21} {statistics.median(out.rates):7.1f} tok/s  TTFT p50"
            f" {pct(out.steady.ttfts, 0.5) * 1000:5.0f} ms p90"
            f" {pct(out.steady.ttfts, 0.9) * 1000:5.0f} ms  cold burst TTFT p50"
            f" {pct(out.cold, 0.5) * 1000:5.0f} ms  prefix hit"
            f" {out.steady.cached / max(out.steady.prompt, 1):6.1%}  KV cells"
            f" {statistics.median(out.cells):7.0f}  peak RSS {out.peak_kib / 1024:5.0f} MiB"
        )
    theirs = [n for n in results if n.startswith("llama-server")]
    if not theirs:
        return
    best = max(theirs, key=lambda n: statistics.median(results[n].rates))
    ref = results[best]
    print(f"\n== against the faster llama-server ({best}) ==")
    for name, out in results.items():
        if name.startswith("serverroom"):
            speed = statistics.median(out.rates) / statistics.median(ref.rates)
            print(
                f"{name:<21} tok/s {speed:5.2f}x"
                f"  TTFT p50 {pct(out.steady.ttfts, 0.5) / pct(ref.steady.ttfts, 0.5):5.2f}x"
                f"  cold burst TTFT p50 {pct(out.cold, 0.5) / pct(ref.cold, 0.5):5.2f}x"
                f"  KV cells {statistics.median(out.cells) / statistics.median(ref.cells):5.2f}x"
            )


if __name__ == "__main__":
    main()
