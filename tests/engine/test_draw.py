"""The sampler draws exactly softmax(logits / T), honours bias and bans, and is seeded."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_cold_blocks_get_their_exact_share() -> None:
    """Most of the mass in blocks that are only bounded (cold): rejection sampling must still
    give each region its softmax share. 4096 tokens (a multiple of the block: rows are used
    in place), T = 1: one token at 0, ~4000 tokens 9 nats lower, a few far below."""
    vocab = 4096
    logits = np.full(vocab, -9.0, dtype=np.float32)
    logits[123] = 0.0
    logits[:50] = -40.0
    draw = FastDraw(vocab, 1.0, {}, seed=5)
    n = 30_000
    counts = np.bincount([draw.draw(logits) for _ in range(n)], minlength=vocab)
    p = np.exp(logits.astype(np.float64))
    p /= p.sum()
    for region in (np.arange(vocab) == 123, (np.arange(vocab) >= 50) & (np.arange(vocab) != 123)):
        expected = p[region].sum() * n
        assert abs(counts[region].sum() - expected) < 5 * np.sqrt(expected)
    assert counts[:50].sum() == 0  # e^-40 relative: never in 30k draws


def test_a_step_draws_each_sequence_as_it_would_alone() -> None:
    """Drawing sequences together gives each the tokens it gets alone, whoever shares the step,
    and adds each sequence's own bias to its row only."""
    vocab = 4096
    rng = np.random.default_rng(9)
    rows = (rng.standard_normal((4, vocab)) * 3).astype(np.float32)
    params = [(0.7, {5: -100.0}), (1.0, {}), (0.0, {7: 3.0}), (1.3, {1: 2.0, 2: -100.0})]

    def fresh() -> list[FastDraw]:
        return [FastDraw(vocab, t, bias, seed=i) for i, (t, bias) in enumerate(params)]

    alone = [[d.draw(rows[i]) for _ in range(20)] for i, d in enumerate(fresh())]
    together_draws = fresh()
    together: list[list[int]] = [[] for _ in params]
    for _ in range(20):
        matrix = rows.copy()  # as llama.cpp's output buffer: one row per sequence
        for i, d in enumerate(together_draws):
            together[i].append(d.draw_at(matrix[i].ctypes.data))
        assert matrix[0, 5] == -np.inf and matrix[3, 1] == rows[3, 1] + 2.0
        assert matrix[1, 5] == rows[1, 5]  # another row's bias stays in its row
    assert together == alone
    pair = fresh()[1:3]  # a different neighbour: the same tokens for sequence 1
    neighbours = rows[1:3].copy()
    assert [pair[0].draw_at(neighbours[0].ctypes.data)] == [alone[1][0]]


def test_rows_without_any_allowed_token_and_bad_biases() -> None:
    """A row with every token banned or masked gives token 0 (the caller's constraint decides
    what that means); a bias for a token outside the row is refused, not written."""
    banned = np.full(VOCAB, -np.inf, dtype=np.float32)
    assert FastDraw(VOCAB, 0.8, {}, seed=1).draw(banned) == 0
    assert FastDraw(VOCAB, 0.0, {}, seed=1).draw(banned) == 0
    with pytest.raises(ValueError):
        FastDraw(VOCAB, 0.8, {VOCAB: 5.0}, seed=1).draw(_logits())


def test_a_very_high_temperature_draws_nearly_uniformly() -> None:
    """T = 1000: every block is hot, and the draw is close to uniform."""
    draw = FastDraw(VOCAB, 1000.0, {}, seed=2)
    counts = np.bincount([draw.draw(_logits(4)) for _ in range(30_000)], minlength=VOCAB)
    assert counts.min() > 50 and counts.max() < 160  # 100 expected per token
