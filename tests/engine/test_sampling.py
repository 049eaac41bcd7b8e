"""A decode step's sampling reads llama.cpp's output rows in place and reports logprobs of the
model's own distribution, without the request's logit bias."""

from __future__ import annotations

import numpy as np
import pytest

from serverroom.engine.base import SamplingParams
from serverroom.engine.llamacpp import held, sampling


def test_logprobs_leave_out_the_bias_the_draw_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    logits = np.array([0.5, 2.0, 1.0, -1.0, 0.0, -3.0, 1.5, 0.2], dtype=np.float32)
    buffer = logits.copy()  # stands for llama.cpp's output row
    monkeypatch.setattr(held, "logits_address", lambda ctx, index: buffer.ctypes.data)
    params = SamplingParams(max_tokens=4, temperature=0.0, logit_bias={3: 100.0}, top_logprobs=2)
    sampler = sampling.SequenceSampler(params, len(logits))
    [sampled] = sampling.sample_step([sampler], [0], 0)
    assert sampled.token == 3  # greedy over the biased row
    assert buffer[3] == logits[3] + 100.0  # the bias went into the output row itself
    z = logits.astype(np.float64)
    logz = z.max() + np.log(np.exp(z - z.max()).sum())
    assert sampled.logprob == pytest.approx(z[3] - logz)  # the model's, not the biased, odds
    assert [t.token for t in sampled.top] == [1, 6]
