"""The embedding model of vector stores: the catalog's ``text-embedding-3-small`` (the bundled
all-MiniLM-L6-v2 unless an operator's catalog points it at an upstream server).

A local model counts chunk tokens with its own tokenizer and embeds a chunk longer than it
reads at once as the normalised mean of its windows. An upstream model is sent the chunks'
text (its server counts and cuts them); tokens are estimated at four characters each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from serverroom.api.upstream import upstream_of
from serverroom.api.vector_stores.chunking import Chunk
from serverroom.context import AppContext
from serverroom.engine.embeddings import EmbeddingEngine
from serverroom.errors import UpstreamError

MODEL = "text-embedding-3-small"
UPSTREAM_BATCH = 64  # chunks per upstream request
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (or as many placeholders as it has tokens)."""

    async def chunks(self, chunks: Sequence[Chunk]) -> Vectors:
        """One unit vector per chunk (ingestion: behind interactive work)."""

    async def query(self, text: str) -> Vectors:
        """The unit vector of a search query."""


def _unit(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class LocalEmbedder:
    def __init__(self, ctx: AppContext, engine: EmbeddingEngine) -> None:
        self.ctx = ctx
        self.engine = engine

    def tokenize(self, text: str) -> list[int]:
        return self.engine.tokenize(text)

    async def chunks(self, chunks: Sequence[Chunk]) -> Vectors:
        window = self.engine.max_tokens
        pieces: list[list[int]] = []
        owners: list[int] = []
        for i, chunk in enumerate(chunks):
            for start in range(0, max(len(chunk.tokens), 1), window):
                pieces.append(chunk.tokens[start : start + window])
                owners.append(i)
        if not pieces:
            return np.zeros((0, self.engine.dimensions), np.float32)
        embedded = await self.ctx.embeddings.embed(self.engine, pieces, priority=1)
        sums = np.zeros((len(chunks), self.engine.dimensions), np.float32)
        np.add.at(sums, np.array(owners), embedded)
        return _unit(sums)

    async def query(self, text: str) -> Vectors:
        vectors = await self.ctx.embeddings.embed(self.engine, [text])
        first: Vectors = vectors[0]
        return first


class UpstreamEmbedder:
    def __init__(self, ctx: AppContext, model_id: str) -> None:
        entry = ctx.catalog.resolve(model_id)
        assert entry.upstream is not None
        self.upstream = upstream_of(ctx, entry)
        self.model = entry.upstream.model

    def tokenize(self, text: str) -> list[int]:
        return [0] * max(1, round(len(text) / 4))

    async def _embed(self, texts: list[str]) -> Vectors:
        answer = await self.upstream.post(
            "/embeddings", {"model": self.model, "input": texts}, affinity=None, request_id=""
        )
        try:
            rows = sorted(answer["data"], key=lambda d: d["index"])
            vectors = np.array([row["embedding"] for row in rows], np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError("The upstream's embeddings could not be read.") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise UpstreamError("The upstream answered a different number of embeddings.")
        return _unit(vectors)

    async def chunks(self, chunks: Sequence[Chunk]) -> Vectors:
        parts = [
            await self._embed([c.text for c in chunks[start : start + UPSTREAM_BATCH]])
            for start in range(0, len(chunks), UPSTREAM_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    async def query(self, text: str) -> Vectors:
        first: Vectors = (await self._embed([text]))[0]
        return first


async def embedder(ctx: AppContext) -> Embedder:
    """The vector stores' embedding model, as the catalog names it."""
    entry = ctx.catalog.resolve(MODEL)
    if entry.upstream is not None:
        return UpstreamEmbedder(ctx, MODEL)
    return LocalEmbedder(ctx, await ctx.embeddings.get(entry))
