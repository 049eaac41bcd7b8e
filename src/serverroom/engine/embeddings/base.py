"""The embedding-engine protocol shared by the service and the engines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

EmbeddingInput = str | Sequence[int]
"""One input: a text, or token ids of the model's own vocabulary (no special tokens)."""


class EmbeddingEngine(Protocol):
    @property
    def dimensions(self) -> int:
        """Length of the vectors ``embed`` returns."""

    @property
    def max_tokens(self) -> int:
        """Most content tokens one input may have (special tokens excluded)."""

    @property
    def vocab_size(self) -> int:
        """Token ids must be in ``range(vocab_size)``."""

    def tokenize(self, text: str, limit: int | None = None) -> list[int]:
        """Token ids of ``text`` without special tokens, what it counts for in usage. With a
        ``limit``, tokenizing may stop once more than ``limit`` ids are found (a longer text is
        not tokenized to its end): then only ``len(result) > limit`` is meaningful."""

    def embed(self, items: Sequence[EmbeddingInput]) -> npt.NDArray[np.float32]:
        """One L2-normalised float32 row per input, in input order; an input longer than
        ``max_tokens`` is cut to it. Blocking: run in a thread."""
