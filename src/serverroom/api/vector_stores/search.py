"""Ranking a store's chunks for a query: attribute filters, vector similarity, BM25, and their
fusion (the default, ``hybrid``).

A store's chunks are held in memory as an ``Index`` (a matrix of unit embeddings and BM25
postings), built on first search and rebuilt when the store's chunks change. The hybrid
score is ``VECTOR_WEIGHT`` times the cosine similarity (clipped at 0) plus the rest times the
BM25 score relative to the query's best, so scores lie in [0, 1] and ``score_threshold`` reads
on them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from serverroom.errors import InvalidRequestError

Mode = Literal["hybrid", "vector", "keyword"]
VECTOR_WEIGHT = 0.8  # chosen with bench/retrieval.py (see docs/performance.md)
K1, B = 1.2, 0.75  # BM25's usual constants
TERM = re.compile(r"\w+")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")


def terms(text: str) -> list[str]:
    return TERM.findall(text.lower())


@dataclass
class Index:
    """One store's chunks, ready to rank."""

    chunk_ids: list[int]
    file_ids: list[str]
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    postings: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = field(
        default_factory=dict
    )
    lengths: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def build(cls, rows: Sequence[tuple[int, str, str, bytes]]) -> Index:
        """From ``(chunk id, file id, text, embedding bytes)`` rows."""
        dimensions = len(rows[0][3]) // 4 if rows else 0
        vectors = np.zeros((len(rows), dimensions), np.float32)
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = np.zeros(len(rows), np.float32)
        for i, (_, _, text, embedding) in enumerate(rows):
            vectors[i] = np.frombuffer(embedding, np.float32)
            counts = Counter(terms(text))
            lengths[i] = sum(counts.values())
            for term, count in counts.items():
                found[term].append((i, count))
        postings = {
            t: (np.array([i for i, _ in p], np.int64), np.array([c for _, c in p], np.float32))
            for t, p in found.items()
        }
        return cls(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            vectors,
            postings,
            lengths,
        )

    def extended(self, rows: Sequence[tuple[int, str, str, bytes]]) -> Index:
        """A new index with ``rows`` (chunks newer than all of this one's) added: what a
        store that only grew needs, without indexing its older chunks again."""
        if not self.chunk_ids:
            return Index.build(rows)
        more = Index.build(rows)
        offset = len(self.chunk_ids)
        postings = dict(self.postings)
        for term, (docs, tf) in more.postings.items():
            known = postings.get(term)
            shifted = docs + offset
            if known is None:
                postings[term] = (shifted, tf)
            else:
                postings[term] = (
                    np.concatenate([known[0], shifted]),
                    np.concatenate([known[1], tf]),
                )
        return Index(
            self.chunk_ids + more.chunk_ids,
            self.file_ids + more.file_ids,
            self.texts + more.texts,
            np.vstack([self.vectors, more.vectors]),
            postings,
            np.concatenate([self.lengths, more.lengths]),
        )

    def bm25(self, query: str) -> npt.NDArray[np.float32]:
        scores = np.zeros(len(self.chunk_ids), np.float32)
        if not self.chunk_ids:
            return scores
        average = float(self.lengths.mean()) or 1.0
        n = len(self.chunk_ids)
        for term in set(terms(query)):
            posting = self.postings.get(term)
            if posting is None:
                continue
            docs, tf = posting
            idf = math.log(1 + (n - len(docs) + 0.5) / (len(docs) + 0.5))
            norm = tf + K1 * (1 - B + B * self.lengths[docs] / average)
            scores[docs] += idf * tf * (K1 + 1) / norm
        return scores

    def rank(
        self,
        query: str,
        vector: npt.NDArray[np.float32] | None,
        allowed: npt.NDArray[np.bool_],
        mode: Mode = "hybrid",
    ) -> npt.NDArray[np.float32]:
        """Every chunk's score for the query (-1 where ``allowed`` is false)."""
        scores = np.zeros(len(self.chunk_ids), np.float32)
        if mode != "keyword" and vector is not None and len(self.chunk_ids):
            cosine = np.clip(self.vectors @ vector, 0.0, 1.0)
            scores += cosine if mode == "vector" else VECTOR_WEIGHT * cosine
        if mode != "vector":
            keyword = self.bm25(query)
            best = float(keyword[allowed].max()) if allowed.any() else 0.0
            if best > 0:
                weight = 1.0 if mode == "keyword" else 1 - VECTOR_WEIGHT
                scores += weight * keyword / best
        return np.where(allowed, scores, -1.0).astype(np.float32)


def check_filter(raw: Any, param: str) -> None:
    """400 unless ``raw`` is a comparison or compound filter as the platform defines them."""
    if not isinstance(raw, dict):
        raise InvalidRequestError("A filter must be an object.", param=param)
    kind = raw.get("type")
    if kind in ("and", "or"):
        inner = raw.get("filters")
        if not isinstance(inner, list) or not inner:
            raise InvalidRequestError("A compound filter needs a list of filters.", param=param)
        for i, item in enumerate(inner):
            check_filter(item, f"{param}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise InvalidRequestError(
            f"Invalid filter type {kind!r}: expected one of {', '.join(COMPARISONS)}, and, or.",
            param=f"{param}.type",
        )
    if not isinstance(raw.get("key"), str):
        raise InvalidRequestError("A comparison filter needs a string key.", param=f"{param}.key")
    value = raw.get("value")
    if kind in ("in", "nin"):
        if not isinstance(value, list):
            raise InvalidRequestError(f"'{kind}' takes a list value.", param=f"{param}.value")
    elif not isinstance(value, str | int | float | bool):
        raise InvalidRequestError(
            "A comparison value must be a string, number or boolean.", param=f"{param}.value"
        )


def matches(raw: dict[str, Any] | None, attributes: dict[str, Any] | None) -> bool:
    """Whether a file's attributes pass a (checked) filter."""
    if raw is None:
        return True
    kind = raw["type"]
    if kind == "and":
        return all(matches(f, attributes) for f in raw["filters"])
    if kind == "or":
        return any(matches(f, attributes) for f in raw["filters"])
    have = (attributes or {}).get(raw["key"])
    want = raw["value"]
    if kind == "eq":
        return bool(have == want)
    if kind == "ne":
        return bool(have != want)
    if kind == "in":
        return have in want
    if kind == "nin":
        return have not in want
    if have is None or isinstance(have, bool) != isinstance(want, bool):
        return False
    try:
        if kind == "gt":
            return bool(have > want)
        if kind == "gte":
            return bool(have >= want)
        if kind == "lt":
            return bool(have < want)
        return bool(have <= want)
    except TypeError:  # a string against a number
        return False
