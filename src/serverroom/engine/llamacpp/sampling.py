"""Per-sequence sampling: exact draws or a llama.cpp sampler chain, constraint masks, logprobs.

Each sequence owns its sampler, built from its own parameters (logit bias, penalties, top-p,
temperature, seeded generator), so sequences decoded in one batch never share state. Plain
temperature or greedy sampling is drawn by ``draw`` (one C call per sequence, straight from
llama.cpp's output buffer); penalties and top_p go through llama.cpp's chain.
"""

from __future__ import annotations

import ctypes
import random
from typing import Any

import llama_cpp as L
import numpy as np
import numpy.typing as npt

from serverroom.engine.base import SampledToken, SamplingParams, TopLogprob
from serverroom.engine.llamacpp import held
from serverroom.engine.llamacpp.draw import FastDraw


class SequenceSampler:
    """Samples one sequence's tokens from the logits llama.cpp left at a batch index."""

    def __init__(self, params: SamplingParams, n_vocab: int) -> None:
        self.params = params
        self.n_vocab = n_vocab
        self._row_type = ctypes.c_float * n_vocab
        self.chain = None
        self.fast: FastDraw | None = None
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        if not (params.presence_penalty or params.frequency_penalty or params.top_p < 1.0):
            # The common case, drawn by ``draw``; penalties and top_p use llama.cpp's chain.
            self.fast = FastDraw(n_vocab, params.temperature, params.logit_bias, seed)
            return
        self.chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        self._add_bias(params)
        if params.presence_penalty or params.frequency_penalty:
            window = max(64, min(params.max_tokens, 4096))
            self._add(
                L.llama_sampler_init_penalties(
                    n_vocab, window, 1.0, params.frequency_penalty, params.presence_penalty
                )
            )
        if params.temperature <= 0:
            self._add(L.llama_sampler_init_greedy())
        else:
            if params.top_p < 1.0:
                self._add(L.llama_sampler_init_top_p(params.top_p, 1))
            self._add(L.llama_sampler_init_temp(params.temperature))
            self._add(L.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def _add(self, sampler: int) -> None:
        L.llama_sampler_chain_add(self.chain, sampler)

    def _add_bias(self, params: SamplingParams) -> None:
        if not params.logit_bias:
            return
        items = (L.llama_logit_bias * len(params.logit_bias))()
        for i, (token, bias) in enumerate(params.logit_bias.items()):
            items[i].token = token  # type: ignore[assignment]
            items[i].bias = float("-inf") if bias <= -100 else bias
        self._add(L.llama_sampler_init_logit_bias(self.n_vocab, len(params.logit_bias), items))

    def prepare(self, address: int) -> npt.NDArray[np.float32] | None:
        """This sequence's logits row (at ``address`` in llama.cpp's output buffer), masked by
        its constraint (None when only llama.cpp's chain needs them)."""
        constraint = self.params.constraint
        if self.fast is None and constraint is None and self.params.top_logprobs is None:
            return None
        buffer: Any = self._row_type.from_address(address)
        logits: npt.NDArray[np.float32] = np.frombuffer(buffer, dtype=np.float32)
        if constraint is not None:
            mask = constraint.allowed_mask()
            if mask is not None:
                logits[~mask[: self.n_vocab]] = -np.inf
                chosen = constraint.decide(logits)
                if chosen is not None:  # a decision, not a sample: only that token remains
                    kept = float(logits[chosen])
                    logits[:] = -np.inf
                    logits[chosen] = kept
        return logits

    def finish(self, token: int, logits: npt.NDArray[np.float32] | None) -> SampledToken:
        """Advance the constraint past ``token``; add logprobs when asked."""
        if self.params.constraint is not None:
            self.params.constraint.accept(token)
        if self.params.top_logprobs is None or logits is None:
            return SampledToken(token)
        return _with_logprobs(token, logits, self.params.top_logprobs)

    def accepted(self, token: int) -> None:
        """A token the constraint forced (not sampled): penalties count it like a sampled one."""
        if self.chain:
            L.llama_sampler_accept(self.chain, token)

    def close(self) -> None:
        if self.chain:
            L.llama_sampler_free(self.chain)
            self.chain = None


def _with_logprobs(token: int, logits: npt.NDArray[np.float32], top: int) -> SampledToken:
    finite = logits.astype(np.float64)
    peak = float(np.max(finite))
    logz = peak + float(np.log(np.sum(np.exp(finite - peak))))
    chosen = float(finite[token] - logz)
    best: list[TopLogprob] = []
    if top > 0:
        idx = np.argpartition(-finite, top - 1)[:top]
        idx = idx[np.argsort(-finite[idx])]
        best = [TopLogprob(int(i), float(finite[i] - logz)) for i in idx]
    return SampledToken(token, chosen, tuple(best))


def sample_step(
    samplers: list[SequenceSampler], indexes: list[int], ctx: int
) -> list[SampledToken]:
    """A token for every sequence of a step: plain draws straight from each row of llama.cpp's
    output buffer (``FastDraw.draw_at``, which adds the bias there), llama.cpp chains
    otherwise."""
    addresses = [held.logits_address(ctx, i) for i in indexes]
    rows = [s.prepare(a) for s, a in zip(samplers, addresses, strict=True)]
    tokens = []
    for k, (sampler, index, address) in enumerate(zip(samplers, indexes, addresses, strict=True)):
        fast = sampler.fast
        if fast is not None and rows[k] is not None:
            if sampler.params.top_logprobs is not None and fast.biased:
                rows[k] = np.array(rows[k])  # logprobs are reported without the bias
            tokens.append(fast.draw_at(address))
        else:
            tokens.append(held.sampler_sample(sampler.chain, ctx, index))
    return [s.finish(t, r) for s, t, r in zip(samplers, tokens, rows, strict=True)]
