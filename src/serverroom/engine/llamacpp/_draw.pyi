"""Exact temperature sampling of one token (``_draw.c``)."""

from typing import Any

def draw(
    address: int, n_vocab: int, inv_t: float, state: Any, bias_ids: Any, bias_values: Any, /
) -> int: ...
