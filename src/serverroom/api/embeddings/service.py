"""Embeddings service: inputs → vectors (optionally shortened) → the platform's list object.

``create_embeddings`` is used by the route and by the Batch API worker (``batch=True``: billed
at the batch rate and queued behind interactive requests).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from serverroom.api.embeddings.schemas import EmbeddingRequest
from serverroom.catalog import ModelEntry
from serverroom.context import AppContext
from serverroom.engine.embeddings import EmbeddingEngine, EmbeddingInput, EmbeddingRegistry
from serverroom.errors import ContextLengthExceededError, InvalidRequestError
from serverroom.metering import Ticket, Usage
from serverroom.principal import Principal

MAX_INPUTS = 2048


def embedding_registry(ctx: AppContext) -> EmbeddingRegistry:
    """The app's embedding registry (created on first use, kept in ``ctx.extras``)."""
    registry = ctx.extras.get("embeddings")
    if not isinstance(registry, EmbeddingRegistry):
        registry = EmbeddingRegistry()
        ctx.extras["embeddings"] = registry
    return registry


def _inputs(request: EmbeddingRequest) -> list[EmbeddingInput]:
    raw = request.input
    if isinstance(raw, str):
        items: list[EmbeddingInput] = [raw]
    elif raw and all(isinstance(x, int) for x in raw):
        items = [[x for x in raw if isinstance(x, int)]]
    else:
        items = [x for x in raw if not isinstance(x, int)]
    if not items:
        raise InvalidRequestError("'input' must not be empty.", param="input", code="invalid_value")
    if len(items) > MAX_INPUTS:
        raise InvalidRequestError(
            f"'input' has {len(items)} items; at most {MAX_INPUTS} are allowed.",
            param="input",
            code="invalid_value",
        )
    for item in items:
        if len(item) == 0:
            raise InvalidRequestError(
                "'input' must not contain empty strings or empty token arrays.",
                param="input",
                code="invalid_value",
            )
    return items


def _count(engine: EmbeddingEngine, entry: ModelEntry, items: list[EmbeddingInput]) -> int:
    total = 0
    for index, item in enumerate(items):
        if not isinstance(item, str):
            bad = [t for t in item if not 0 <= t < engine.vocab_size]
            if bad:
                raise InvalidRequestError(
                    f"Invalid token id {bad[0]} in input[{index}].",
                    param="input",
                    code="invalid_value",
                )
        n = engine.count_tokens(item)
        if n > engine.max_tokens:
            raise ContextLengthExceededError(
                f"This model's maximum context length is {engine.max_tokens} tokens per input,"
                f" however input[{index}] has {n} tokens. Please reduce the length of the input.",
                param="input",
            )
        total += n
    return total


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


def encode(vector: np.ndarray[Any, Any], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector.tolist()]


async def create_embeddings(
    ctx: AppContext, request: EmbeddingRequest, principal: Principal, *, batch: bool = False
) -> tuple[dict[str, Any], Ticket]:
    """Embed the request's inputs; returns the response body and the metering ticket."""
    entry = ctx.catalog.resolve(request.model)
    if entry.kind != "embedding":
        raise InvalidRequestError(
            f"The model `{entry.id}` does not support embeddings.",
            param="model",
            code="model_not_supported",
        )
    items = _inputs(request)
    registry = embedding_registry(ctx)
    engine = await registry.get(entry)
    if request.dimensions is not None and request.dimensions > engine.dimensions:
        _shorten(
            np.zeros((0, engine.dimensions), np.float32), request.dimensions, engine.dimensions
        )
    tokens = _count(engine, entry, items)
    ticket = await ctx.metering.admit(
        principal,
        entry,
        endpoint="/v1/embeddings",
        prompt_tokens=tokens,
        max_output_tokens=0,
        batch=batch,
    )
    try:
        vectors = await registry.embed(engine, items, priority=1 if batch else 0)
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
