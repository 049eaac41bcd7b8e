"""Retrieval quality and search latency of vector stores: vector-only, keyword-only (BM25) and
hybrid ranking, on a corpus that ships with Python itself.

Quality: the 79 topics of the language reference in the stdlib's ``pydoc_data`` are the
documents, cut and embedded exactly as ingestion does (``auto`` chunking, all-MiniLM-L6-v2).
Two query sets, each with one relevant document per query:

- ``held-out``: three sentences from each topic (at a quarter, half and three quarters of it),
  removed from the indexed text, so a query is never found verbatim;
- ``names``: each topic's name as words ("atom literals", "augassign", "bltin null object").

A document's rank is that of its best chunk; recall@5 and MRR (reciprocal rank, 0 below 50).

Latency: ``Index.build``, extending the index by 100 new chunks, and one ``rank`` over
synthetic stores of 10k and 100k chunks (random unit vectors; 100 words a chunk from a
5,000-word vocabulary).

    python bench/retrieval.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

import numpy as np

from serverroom.api.vector_stores.chunking import AUTO, chunk_text
from serverroom.api.vector_stores.search import Index, Mode
from serverroom.catalog import Catalog
from serverroom.engine.embeddings.registry import default_embedding_factory

SENTENCE = re.compile(r"(?<=[.!?])\s+")
MODES: tuple[Mode, ...] = ("vector", "keyword", "hybrid")


def corpus() -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Documents (topic -> indexed text) and queries (set, query, relevant topic)."""
    from pydoc_data.topics import topics

    docs: dict[str, str] = {}
    queries: list[tuple[str, str, str]] = []
    for name, text in sorted(topics.items()):
        sentences = [s for s in SENTENCE.split(text) if 8 <= len(s.split()) <= 40]
        held = (
            {sentences[int(len(sentences) * q)] for q in (0.25, 0.5, 0.75)} if sentences else set()
        )
        kept = text
        for sentence in held:
            kept = kept.replace(sentence, " ")
            queries.append(("held-out", " ".join(sentence.split()), name))
        docs[name] = kept
        queries.append(("names", name.replace("-", " ").replace("bltin", "builtin"), name))
    return docs, queries


def quality() -> None:
    engine = default_embedding_factory(Catalog.load().resolve("text-embedding-3-small"))
    docs, queries = corpus()
    rows: list[tuple[int, str, str, bytes]] = []
    started = time.perf_counter()
    for name, text in docs.items():
        chunks = chunk_text(text, AUTO, engine.tokenize)
        for chunk in chunks:
            step = engine.max_tokens  # a long chunk: the mean of its windows, as ingestion does
            windows = [chunk.tokens[i : i + step] for i in range(0, len(chunk.tokens), step)]
            vector = engine.embed(windows).sum(axis=0)
            vector /= np.linalg.norm(vector)
            rows.append((len(rows), name, chunk.text, vector.astype(np.float32).tobytes()))
    seconds = time.perf_counter() - started
    print(f"{len(docs)} documents, {len(rows)} chunks, embedded in {seconds:.0f} s")
    index = Index.build(rows)
    allowed = np.ones(len(rows), dtype=bool)
    vectors = engine.embed([q for _, q, _ in queries])
    results: dict[tuple[str, Mode], list[float]] = {}
    for (kind, query, relevant), vector in zip(queries, vectors, strict=True):
        for mode in MODES:
            scores = index.rank(query, vector, allowed, mode)
            ranked: list[str] = []
            for i in np.argsort(-scores, kind="stable"):
                if index.file_ids[i] not in ranked:
                    ranked.append(index.file_ids[i])
                if len(ranked) == 50:
                    break
            rank = ranked.index(relevant) + 1 if relevant in ranked else 0
            results.setdefault((kind, mode), []).append(rank)
    print(f"\n{'queries':<10}{'n':>5}  {'mode':<9}{'recall@5':>10}{'MRR':>8}")
    for (kind, mode), ranks in results.items():
        recall = sum(1 for r in ranks if 0 < r <= 5) / len(ranks)
        mrr = statistics.mean(1 / r if r else 0.0 for r in ranks)
        print(f"{kind:<10}{len(ranks):>5}  {mode:<9}{recall:>10.3f}{mrr:>8.3f}")


def latency(sizes: list[int]) -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    header = f"{'chunks':>8}{'build s':>10}{'+100 chunks s':>15}"
    print(f"\n{header}{'hybrid rank ms':>16}{'vector rank ms':>16}")
    for size in sizes:
        vectors = np.random.default_rng(7).standard_normal((size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            (i, f"file{i % 100}", " ".join(rng.choices(vocabulary, k=100)), vectors[i].tobytes())
            for i in range(size)
        ]
        started = time.perf_counter()
        index = Index.build(rows[:-100])
        built = time.perf_counter() - started
        started = time.perf_counter()
        index = index.extended(rows[-100:])  # a file's chunks added: the index is extended
        grown = time.perf_counter() - started
        allowed = np.ones(size, dtype=bool)
        query = " ".join(rng.choices(vocabulary, k=5))
        timings: dict[Mode, float] = {}
        for mode in ("hybrid", "vector"):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                scores = index.rank(query, vectors[0], allowed, mode)
                np.argsort(-scores)[:10]
                runs.append(time.perf_counter() - started)
            timings[mode] = statistics.median(runs) * 1000
        line = f"{size:>8}{built:>10.1f}{grown:>15.2f}"
        print(f"{line}{timings['hybrid']:>16.1f}{timings['vector']:>16.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args()
    if not args.latency_only:
        quality()
    latency(args.sizes)


if __name__ == "__main__":
    main()
