"""Exact temperature sampling over the full vocabulary, in one C call per sequence.

The OpenAI semantics have no top-k: a token is drawn from softmax(logits / T) over all ~49k
tokens. Exponentiating all of them costs ~0.15 ms a token in numpy, and right after a
``llama_decode`` every numpy call runs with cold caches (~0.3 ms for a dozen of them);
llama.cpp's own chain is slower still. ``_draw.c`` draws the same distribution by rejection
sampling over blocks of 64 consecutive tokens, in one pass over the row plus a few hundred
exponentials:

* a block whose best token is within 8 nats (after temperature) of the overall best is *hot*:
  its exact mass is computed;
* every other block is *cold* and only bounded: its size times the mass of its best token.

A block is chosen in proportion to its exact mass (hot) or bound (cold); a cold block is then
accepted with probability (its exact mass / its bound), and a rejection starts over. Accepted
draws follow the softmax exactly (rejection sampling); after 8 rejections every token is
weighed (also exact). Greedy decoding is the first largest biased logit.

Each sequence has its own xoshiro256** generator, seeded through numpy's ``SeedSequence``, so
a seed fixes a sequence's tokens whichever other sequences share its decode steps. The logit
bias is added to the row in place (it lies in llama.cpp's output buffer and is not used again).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from serverroom.engine.llamacpp import _draw

F32 = npt.NDArray[np.float32]


class FastDraw:
    """One sequence's sampler: temperature (or greedy), logit bias and a seeded generator."""

    def __init__(
        self, n_vocab: int, temperature: float, logit_bias: dict[int, float], seed: int
    ) -> None:
        self.n_vocab = n_vocab
        self.inv_t = 1.0 / temperature if temperature > 0 else 0.0  # 0: greedy
        self.state = np.random.SeedSequence(seed).generate_state(4, np.uint64)
        self.bias_ids = np.fromiter(logit_bias, dtype=np.int32, count=len(logit_bias))
        values = [float("-inf") if b <= -100 else b for b in logit_bias.values()]
        self.bias_values = np.asarray(values, dtype=np.float32)

    @property
    def biased(self) -> bool:
        return bool(self.bias_ids.size)

    def draw_at(self, address: int) -> int:
        """A token from the ``n_vocab`` float32 logits at ``address`` (bias added there)."""
        return _draw.draw(
            address, self.n_vocab, self.inv_t, self.state, self.bias_ids, self.bias_values
        )

    def draw(self, logits: F32) -> int:
        """A token from ``logits`` (one row; not modified)."""
        row = np.array(logits, dtype=np.float32)
        return self.draw_at(row.ctypes.data)
