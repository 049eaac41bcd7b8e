"""An embeddings request's ``input``, checked and tokenized within the platform's limits.

The platform takes at most ``MAX_INPUTS`` inputs, each within the model's context
(``engine.max_tokens``), and at most ``MAX_REQUEST_TOKENS`` tokens summed over all inputs;
anything else is a 400 with ``param: "input"``. The checks hold memory bounded by those limits,
not by the body: the number of items is checked before the items, a token array's length before
its ids, and a text is tokenized only until it is over the model's context
(``EmbeddingEngine.tokenize(text, limit)``), so no more than ``max_tokens + 1`` ids per input
and ``MAX_REQUEST_TOKENS`` ids per request are ever held.
"""

from __future__ import annotations

from collections.abc import Sequence

from serverroom.engine.embeddings import EmbeddingEngine, EmbeddingInput
from serverroom.errors import ContextLengthExceededError, InvalidRequestError

MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300_000
SHAPES = "a string, an array of strings, an array of token ids or an array of token arrays"


def split_inputs(raw: object) -> list[EmbeddingInput]:
    """The inputs of ``raw`` (a string or a flat token array is one input), not yet tokenized;
    a 400 for an empty or over-long array, an item of the wrong type or an empty item."""
    if isinstance(raw, str):
        items: list[EmbeddingInput] = [raw]
    elif not isinstance(raw, list) or not raw:
        raise _invalid("'input' must not be empty." if raw == [] else f"'input' must be {SHAPES}.")
    elif _is_token_id(raw[0]):
        items = [raw]  # its ids are checked once its length is known to fit
    else:
        if len(raw) > MAX_INPUTS:
            raise _invalid(f"'input' has {len(raw)} items; at most {MAX_INPUTS} are allowed.")
        kind = str if isinstance(raw[0], str) else list
        for index, item in enumerate(raw):
            if not isinstance(item, kind):
                raise _invalid(f"'input' must be {SHAPES}; input[{index}] does not fit the rest.")
        items = raw
    if any(len(item) == 0 for item in items):
        raise _invalid("'input' must not contain empty strings or empty token arrays.")
    return items


def tokenize_inputs(
    engine: EmbeddingEngine, items: Sequence[EmbeddingInput]
) -> tuple[list[Sequence[int]], int]:
    """Each input's token ids and their sum. A 400 when an input is over the model's context
    or holds an invalid id, or when the sum is over ``MAX_REQUEST_TOKENS`` (every input is
    counted first, so that the message gives the request's total)."""
    ids: list[Sequence[int]] = []
    total = 0
    for index, item in enumerate(items):
        tokens = _tokens(engine, item, index)
        total += len(tokens)
        if total <= MAX_REQUEST_TOKENS:
            ids.append(tokens)
    if total > MAX_REQUEST_TOKENS:
        raise _invalid(
            f"Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request.",
            code="max_tokens_per_request",
        )
    return ids, total


def input_size(items: Sequence[EmbeddingInput]) -> int:
    """Characters and token ids in ``items``: what tokenizing them costs, roughly."""
    return sum(len(item) for item in items)


def _tokens(engine: EmbeddingEngine, item: EmbeddingInput, index: int) -> Sequence[int]:
    limit = engine.max_tokens
    tokens = engine.tokenize(item, limit) if isinstance(item, str) else item
    if len(tokens) > limit:
        has = f"more than {limit}" if isinstance(item, str) else str(len(tokens))
        raise ContextLengthExceededError(
            f"This model's maximum context length is {limit} tokens per input, however"
            f" input[{index}] has {has} tokens. Please reduce the length of the input.",
            param="input",
        )
    if not isinstance(item, str):
        _check_ids(item, engine.vocab_size, index)
    return tokens


def _check_ids(tokens: Sequence[object], vocab_size: int, index: int) -> None:
    for position, token in enumerate(tokens):
        if not isinstance(token, int) or isinstance(token, bool):
            raise _invalid(
                f"input[{index}][{position}] is a {type(token).__name__}; token ids are integers."
            )
        if not 0 <= token < vocab_size:
            raise _invalid(f"Invalid token id {token} in input[{index}].")


def _is_token_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a token


def _invalid(message: str, *, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param="input", code=code)
