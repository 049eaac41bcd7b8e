"""Exact temperature sampling over the full vocabulary in numpy, exponentiating only what matters.

The OpenAI semantics have no top-k: a token is drawn from softmax(logits / T) over all ~49k
tokens. Exponentiating all of them costs ~0.15 ms a token in numpy; llama.cpp's chain is slower
still. This draws the same distribution by rejection sampling over blocks of ``BLOCK`` tokens
(block ``b`` holds tokens ``b, b + nb, b + 2 nb, ...``, so block maxima are one vectorised pass):

* a block whose best token is within ``HOT`` nats of the overall best is *hot*: its tokens are
  exponentiated and its exact mass is known;
* every other block is *cold* and only bounded: ``BLOCK * exp(block max - peak)``.

The draw picks the hot region or the cold region in proportion to the exact hot mass and the
summed cold bounds. In the hot region the token is drawn from exact masses. In the cold region a
block is chosen by its bound and accepted with probability (its exact mass / its bound), computed
then from its 16 tokens; on rejection the draw starts again. Accepted draws follow the softmax
exactly (rejection sampling); on real SmolLM2 logits ~300 of 49k tokens are exponentiated and
~4 % of draws take a second try. After ``TRIES`` rejections every token is exponentiated (also
exact). Greedy decoding is an argmax.

All the sequences of a decode step are drawn together (``DrawBatch``): the vectorised passes
run once over a (sequences x vocabulary) matrix, and only the final choice is per sequence.
A sequence's tokens do not depend on which others share its step.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK = 16
HOT = 8.0
TRIES = 8
SLACK = BLOCK * (1 + 1e-5)  # the cold bound per unit of exp(block max), float32 rounding covered

F32 = npt.NDArray[np.float32]


class FastDraw:
    """One sequence's sampler: temperature (or greedy), logit bias and a seeded generator."""

    def __init__(
        self, n_vocab: int, temperature: float, logit_bias: dict[int, float], seed: int
    ) -> None:
        self.n_vocab = n_vocab
        self.greedy = temperature <= 0
        self.inv_t = np.float32(1.0 / temperature) if temperature > 0 else np.float32(1.0)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._bias_ids = np.fromiter(logit_bias, dtype=np.int64, count=len(logit_bias))
        values = [float("-inf") if b <= -100 else b for b in logit_bias.values()]
        self._bias = np.asarray(values, dtype=np.float32)
        self._own: DrawBatch | None = None

    @property
    def biased(self) -> bool:
        return bool(self._bias_ids.size)

    def bias_into(self, logits: F32) -> None:
        """Add the logit bias to ``logits`` in place."""
        if self._bias_ids.size:
            logits[self._bias_ids] += self._bias

    def draw(self, logits: F32) -> int:
        """A token from ``logits`` (one row of the model's output, not modified)."""
        if self._own is None:
            self._own = DrawBatch(self.n_vocab, 1)
        return self._own.draw([self], logits[None, :].copy())[0]


class DrawBatch:
    """The workspace for drawing up to ``rows`` sequences of one step together."""

    def __init__(self, n_vocab: int, rows: int) -> None:
        self.n_vocab = n_vocab
        self.nb = -(-n_vocab // BLOCK)
        # Only for vocabularies that are not a multiple of BLOCK: rows padded with -inf.
        self._padded = np.full((rows, BLOCK * self.nb), -np.inf, dtype=np.float32)

    def draw(self, draws: list[FastDraw], logits: F32) -> list[int]:
        """One token for each sequence from its row of ``logits`` (sequences x vocabulary),
        which gets each sequence's logit bias added in place."""
        k, n = len(draws), self.n_vocab
        for d, row in zip(draws, logits, strict=True):
            d.bias_into(row)
        if n % BLOCK:
            if k > len(self._padded):
                self._padded = np.full((k, BLOCK * self.nb), -np.inf, dtype=np.float32)
            self._padded[:k, :n] = logits
            cols = self._padded[:k].reshape(k, BLOCK, self.nb)
        else:
            cols = logits.reshape(k, BLOCK, self.nb)
        tokens = [0] * k
        sampled = [i for i, d in enumerate(draws) if not d.greedy]
        for i, d in enumerate(draws):
            if d.greedy:
                tokens[i] = int(np.argmax(logits[i]))
        if sampled:
            for i, token in zip(sampled, self._sample(draws, cols, sampled), strict=True):
                tokens[i] = token
        return tokens

    def _sample(self, draws: list[FastDraw], cols: F32, rows: list[int]) -> list[int]:
        """Tokens for ``rows``; ``cols[i, :, b]`` is block b of row i, in raw logits."""
        k, nb = len(draws), self.nb
        inv = np.array([d.inv_t for d in draws], dtype=np.float32)[:, None]
        bmax = cols.max(axis=1)
        peak = bmax.max(axis=1)
        with np.errstate(invalid="ignore"):  # a row banned entirely is NaN here, and skipped
            gap = (bmax - peak[:, None]) * inv  # in units of logits / T
            hot_r, hot_c = np.nonzero(gap >= -HOT)  # grouped by row, in row order
            hot_mass = np.exp((cols[hot_r, :, hot_c] - peak[hot_r, None]) * inv[hot_r])
            hot_sums = hot_mass.sum(axis=1, dtype=np.float64).tolist()
            gap[hot_r, hot_c] = -np.inf
            bounds = np.exp(gap)  # cold blocks only; hot ones are 0 here
            cold = (bounds.sum(axis=1, dtype=np.float64) * SLACK).tolist()
        starts = np.searchsorted(hot_r, np.arange(k + 1)).tolist()
        blocks = hot_c.tolist()
        out = []
        for i in rows:
            if not np.isfinite(peak[i]):  # everything banned or masked: nothing better to do
                out.append(int(np.argmax(cols[i].reshape(-1)[: self.n_vocab])))
                continue
            lo, hi = starts[i], starts[i + 1]
            row = _Row(draws[i].rng, nb, cols[i], bounds[i], peak[i], draws[i].inv_t)
            out.append(row.draw(hot_sums[lo:hi], blocks[lo:hi], hot_mass[lo:hi], cold[i]))
        return out


class _Row:
    """The per-sequence end of a draw: choose the hot or cold region, then the token."""

    def __init__(
        self,
        rng: np.random.Generator,
        nb: int,
        cols: F32,
        bounds: F32,
        peak: np.float32,
        inv_t: np.float32,
    ) -> None:
        self.rng, self.nb, self.cols, self.bounds = rng, nb, cols, bounds
        self.peak, self.inv_t = peak, inv_t

    def draw(self, sums: list[float], blocks: list[int], mass: F32, cold_total: float) -> int:
        hot_total = sum(sums)
        for _ in range(TRIES):
            target = self.rng.random() * (hot_total + cold_total)
            if target < hot_total:
                base, h = 0.0, 0
                while h < len(sums) - 1 and target >= base + sums[h]:
                    base += sums[h]
                    h += 1
                return _pick(mass[h], target - base) * self.nb + blocks[h]
            token = self._try_cold((target - hot_total) / SLACK)
            if token is not None:
                return token
        return self._exact()

    def _mass(self, logits: F32) -> F32:
        mass: F32 = np.exp((logits - self.peak) * self.inv_t)
        return mass

    def _try_cold(self, target: float) -> int | None:
        """The cold block at ``target`` (in units of ``bounds``), accepted with probability
        mass / bound; a token drawn from it, or None when it is rejected."""
        bounds = self.bounds
        running = np.cumsum(bounds, dtype=np.float64)
        b = min(int(np.searchsorted(running, target, side="right")), len(bounds) - 1)
        while b > 0 and bounds[b] == 0:  # rounding at the very top of the range
            b -= 1
        row = self._mass(self.cols[:, b])
        mass = float(row.sum(dtype=np.float64))
        if self.rng.random() * float(bounds[b]) * SLACK >= mass:
            return None
        return _pick(row, self.rng.random() * mass) * self.nb + b

    def _exact(self) -> int:
        """Every token exponentiated: the fallback after repeated rejections."""
        flat = self._mass(self.cols).reshape(-1)  # (BLOCK, nb) flattened: token j * nb + b
        return _pick(flat, self.rng.random() * float(flat.sum(dtype=np.float64)))


def _pick(mass: F32, target: float) -> int:
    """The index whose cumulative mass first exceeds ``target``. A zero-mass index cannot be
    chosen, except past the end through rounding: then the last token with mass is."""
    inner = np.cumsum(mass, dtype=np.float64)
    i = int(np.searchsorted(inner, target, side="right"))
    return i if i < len(mass) else int(np.flatnonzero(mass)[-1])
