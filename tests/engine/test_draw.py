"""The numpy sampler draws exactly softmax(logits / T), honours bias and bans, and is seeded."""

from __future__ import annotations

import numpy as np

from serverroom.engine.llamacpp.draw import FastDraw

VOCAB = 300  # not a multiple of the block size


def _logits(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(VOCAB) * 2).astype(np.float32)


def test_frequencies_match_the_softmax() -> None:
    logits = _logits()
    logits[:5] += 4  # a few likely tokens, a long tail
    draw = FastDraw(VOCAB, 0.7, {}, seed=3)
    n = 40_000
    counts = np.bincount([draw.draw(logits) for _ in range(n)], minlength=VOCAB)
    z = logits.astype(np.float64) / 0.7
    p = np.exp(z - z.max())
    p /= p.sum()
    expected = p * n
    likely = expected > 50
    # within 5 standard deviations for each reasonably likely token
    assert np.all(np.abs(counts[likely] - expected[likely]) < 5 * np.sqrt(expected[likely]) + 1)
    assert counts.sum() == n
    assert counts[~likely].sum() < 3 * expected[~likely].sum() + 20


def test_banned_and_masked_tokens_are_never_drawn() -> None:
    logits = _logits(1)
    logits[7] = 50.0  # would always win
    logits[VOCAB - 1] = 49.0
    logits[10:200] = -np.inf  # a constraint mask
    draw = FastDraw(VOCAB, 1.0, {7: -100, VOCAB - 1: -100}, seed=1)
    drawn = {draw.draw(logits) for _ in range(3000)}
    assert 7 not in drawn and VOCAB - 1 not in drawn
    assert not drawn & set(range(10, 200))


def test_greedy_is_the_biased_argmax_and_leaves_logits_alone() -> None:
    logits = _logits(2)
    before = logits.copy()
    top = int(np.argmax(logits))
    assert FastDraw(VOCAB, 0.0, {}, seed=0).draw(logits) == top
    assert FastDraw(VOCAB, 0.0, {top: -100, 11: 100}, seed=0).draw(logits) == 11
    FastDraw(VOCAB, 0.8, {3: 5.0}, seed=0).draw(logits)
    assert np.array_equal(logits, before)


def test_the_seed_fixes_the_sequence() -> None:
    logits = _logits(3)
    a = FastDraw(VOCAB, 1.0, {}, seed=42)
    b = FastDraw(VOCAB, 1.0, {}, seed=42)
    c = FastDraw(VOCAB, 1.0, {}, seed=43)
    seq_a = [a.draw(logits) for _ in range(50)]
    assert seq_a == [b.draw(logits) for _ in range(50)]
    assert seq_a != [c.draw(logits) for _ in range(50)]
