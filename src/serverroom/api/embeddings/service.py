"""Embeddings service: inputs → token ids (``inputs.py``: within the platform's limits) →
vectors (optionally shortened) → the platform's list object.

``create_embeddings`` is used by the route and by the Batch API worker (a batch ``Call``: billed
at the batch rate and queued behind interactive requests).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from serverroom.api.embeddings.inputs import input_size, split_inputs, tokenize_inputs
from serverroom.api.embeddings.schemas import EmbeddingRequest
from serverroom.api.upstream import upstream_of
from serverroom.catalog import ModelEntry
from serverroom.context import AppContext, Call
from serverroom.engine.embeddings import EmbeddingEngine, EmbeddingInput, EmbeddingRegistry
from serverroom.errors import InvalidRequestError
from serverroom.metering import Ticket, Usage

THREAD_ABOVE = 16_384  # characters and token ids: fewer tokenize faster than a thread hand-off


def embedding_registry(ctx: AppContext) -> EmbeddingRegistry:
    """The app's embedding registry (built by the app factory)."""
    return ctx.embeddings


@contextlib.asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Close the embedding engines with the app."""
    try:
        yield
    finally:
        await ctx.embeddings.close()


async def _tokenize(
    engine: EmbeddingEngine, items: list[EmbeddingInput]
) -> tuple[list[Sequence[int]], int]:
    """``tokenize_inputs``, in a worker thread for a large request (not to hold the loop)."""
    if input_size(items) > THREAD_ABOVE:
        return await asyncio.to_thread(tokenize_inputs, engine, items)
    return tokenize_inputs(engine, items)


def _shorten(vectors: np.ndarray[Any, Any], dimensions: int | None, native: int) -> Any:
    if dimensions is None or dimensions == native:
        return vectors
    if dimensions > native:
        raise InvalidRequestError(
            f"This model supports at most {native} dimensions; {dimensions} were requested.",
            param="dimensions",
            code="invalid_value",
        )
    short = vectors[:, :dimensions]
    norms = np.linalg.norm(short, axis=1, keepdims=True)
    return (short / np.maximum(norms, 1e-12)).astype(np.float32)


async def _upstream_embeddings(
    call: Call, request: EmbeddingRequest, entry: ModelEntry, items: list[EmbeddingInput]
) -> tuple[dict[str, Any], Ticket]:
    """Embeddings from the upstream, billed on its count (an estimate until it answers)."""
    assert entry.upstream is not None
    estimate = sum(len(i) // 4 + 1 if isinstance(i, str) else len(i) for i in items)
    ticket = await call.admit(entry, "/v1/embeddings", prompt_tokens=estimate, max_output_tokens=0)
    body = {**request.model_dump(mode="json", exclude_unset=True), "model": entry.upstream.model}
    try:
        answer = await upstream_of(call.ctx, entry).post(
            "/embeddings", body, affinity=None, request_id=""
        )
    except BaseException:
        await ticket.settle(Usage(0, 0, 0))
        raise
    usage = answer.get("usage")
    counted = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    tokens = int(counted or estimate)
    await ticket.settle(Usage(tokens, 0, 0))
    answer["model"] = entry.id
    answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return answer, ticket


def encode(vector: np.ndarray[Any, Any], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector.tolist()]


async def create_embeddings(call: Call, request: EmbeddingRequest) -> tuple[dict[str, Any], Ticket]:
    """Embed the request's inputs; returns the response body and the metering ticket."""
    ctx = call.ctx
    entry = ctx.catalog.resolve(request.model)
    if entry.kind != "embedding":
        raise InvalidRequestError(
            f"The model `{entry.id}` does not support embeddings.",
            param="model",
            code="model_not_supported",
        )
    items = split_inputs(request.input)
    if entry.upstream is not None:
        return await _upstream_embeddings(call, request, entry, items)
    registry = embedding_registry(ctx)
    engine = await registry.get(entry)
    if request.dimensions is not None and request.dimensions > engine.dimensions:
        _shorten(
            np.zeros((0, engine.dimensions), np.float32), request.dimensions, engine.dimensions
        )
    ids, tokens = await _tokenize(engine, items)
    ticket = await call.admit(entry, "/v1/embeddings", prompt_tokens=tokens, max_output_tokens=0)
    try:
        vectors = await registry.embed(engine, ids, priority=call.priority)
    except BaseException:
        await ticket.settle(Usage(0, 0, 0))
        raise
    vectors = _shorten(vectors, request.dimensions, engine.dimensions)
    await ticket.settle(Usage(tokens, 0, 0))
    data = [
        {"object": "embedding", "index": i, "embedding": encode(v, request.encoding_format)}
        for i, v in enumerate(vectors)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": entry.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return body, ticket
