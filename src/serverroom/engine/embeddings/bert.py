"""A BERT sentence encoder in pure numpy (all-MiniLM-L6-v2 and other BERT-style models).

Reads the weights with ``safetensors`` (numpy arrays, no torch) and tokenizes with the
``tokenizers`` package from ``tokenizer.json``. Inputs are sorted by length and padded per
forward pass; the output is mean pooling over real tokens followed by L2 normalisation, as the
model's sentence-transformers config (Transformer → Pooling(mean) → Normalize) prescribes.

Memory is bounded whatever the input: a text is tokenized ``PIECE`` characters at a time (the
tokenizer holds up to ~500 bytes per character of what it is given), a forward pass holds at
most ``CHUNK`` inputs and ``TOKENS_PER_PASS`` padded tokens, attention scores are computed a
few inputs at a time (at most ``ATTENTION_FLOATS`` floats) and the feed-forward block
``FFN_ROWS`` tokens at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serverroom.engine.embeddings.base import EmbeddingInput

F32 = npt.NDArray[np.float32]
CHUNK = 32  # most inputs per forward pass
TOKENS_PER_PASS = 2048  # most padded tokens per forward pass (activations: 3 MB per tensor)
ATTENTION_FLOATS = 1 << 21  # most attention scores held at once (8 MB)
FFN_ROWS = 512  # tokens per feed-forward step (its activations: 3 MB per tensor)
PIECE = 4096  # characters tokenized at once
_SPACES = (" ", "\n", "\t", "\r")  # BERT never joins words across these: safe cut points


_ERF_POLY = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _gelu(x: F32) -> F32:
    """0.5·x·(1 + erf(x/√2)), erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, enough for
    float32). In place on three temporaries: ``x`` is the largest tensor (tokens * 1536)."""
    z = x * np.float32(0.7071067811865476)
    a = np.abs(z)
    t = a * np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly: F32 = t * np.float32(_ERF_POLY[0])
    for coefficient in _ERF_POLY[1:]:
        poly += np.float32(coefficient)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(np.float32(1.0), poly, out=poly)
    np.copysign(poly, z, out=poly)  # erf(z); erf(0) comes out as ~1e-9, times x = 0 below
    poly += np.float32(1.0)
    poly *= x
    poly *= np.float32(0.5)
    return poly


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of at most ``PIECE`` characters, each cut after a space or line break
    where the window has one, so that the pieces' tokens are exactly the text's tokens. A run
    of more than ``PIECE`` characters without one is cut at ``PIECE`` (its tokens then count
    as those of its pieces: a little more than the whole run, which is one [UNK])."""
    start = 0
    while len(text) - start > PIECE:
        end = start + PIECE
        cut = max(text.rfind(c, start, end) for c in _SPACES) + 1
        end = cut if cut > start else end
        yield text[start:end]
        start = end
    yield text[start:] if start else text


def _passes(order: list[int], lengths: list[int]) -> Iterator[list[int]]:
    """Runs of ``order`` (indices by ascending length) of at most ``CHUNK`` inputs and
    ``TOKENS_PER_PASS`` padded tokens (one input per pass if it alone is longer)."""
    chunk: list[int] = []
    for i in order:
        if chunk and (len(chunk) == CHUNK or (len(chunk) + 1) * lengths[i] > TOKENS_PER_PASS):
            yield chunk
            chunk = []
        chunk.append(i)
    if chunk:
        yield chunk


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: F32 = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


class _Layer:
    def __init__(self, w: dict[str, Any], prefix: str) -> None:
        def t(name: str) -> F32:
            return np.ascontiguousarray(w[f"{prefix}.{name}"].T, dtype=np.float32)

        def v(name: str) -> F32:
            return np.asarray(w[f"{prefix}.{name}"], dtype=np.float32)

        # Fused QKV projection: one matmul instead of three.
        self.qkv_w = np.concatenate(
            [
                t("attention.self.query.weight"),
                t("attention.self.key.weight"),
                t("attention.self.value.weight"),
            ],
            axis=1,
        )
        self.qkv_b = np.concatenate(
            [
                v("attention.self.query.bias"),
                v("attention.self.key.bias"),
                v("attention.self.value.bias"),
            ]
        )
        self.out_w = t("attention.output.dense.weight")
        self.out_b = v("attention.output.dense.bias")
        self.ln1 = v("attention.output.LayerNorm.weight"), v("attention.output.LayerNorm.bias")
        self.up_w, self.up_b = t("intermediate.dense.weight"), v("intermediate.dense.bias")
        self.down_w, self.down_b = t("output.dense.weight"), v("output.dense.bias")
        self.ln2 = v("output.LayerNorm.weight"), v("output.LayerNorm.bias")


class BertEngine:
    """``EmbeddingEngine`` over a sentence-transformers BERT directory."""

    def __init__(self, model_dir: Path, *, max_tokens: int | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        st_config_path = model_dir / "sentence_bert_config.json"
        st_config = json.loads(st_config_path.read_text()) if st_config_path.exists() else {}
        self._heads = int(config["num_attention_heads"])
        self._hidden = int(config["hidden_size"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._vocab = int(config["vocab_size"])
        seq = int(st_config.get("max_seq_length", config["max_position_embeddings"]))
        self._max_seq = min(seq, int(config["max_position_embeddings"]))
        if max_tokens is not None:
            self._max_seq = min(self._max_seq, max_tokens)
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError(f"{model_dir}: the tokenizer has no [CLS]/[SEP] tokens")
        self._cls, self._sep = int(cls), int(sep)
        w = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self._word = np.asarray(w[f"{prefix}embeddings.word_embeddings.weight"], np.float32)
        self._pos = np.asarray(w[f"{prefix}embeddings.position_embeddings.weight"], np.float32)
        self._type0 = np.asarray(
            w[f"{prefix}embeddings.token_type_embeddings.weight"][0], np.float32
        )
        self._ln0 = (
            np.asarray(w[f"{prefix}embeddings.LayerNorm.weight"], np.float32),
            np.asarray(w[f"{prefix}embeddings.LayerNorm.bias"], np.float32),
        )
        self._layers = [
            _Layer(w, f"{prefix}encoder.layer.{i}") for i in range(int(config["num_hidden_layers"]))
        ]

    @property
    def dimensions(self) -> int:
        return self._hidden

    @property
    def max_tokens(self) -> int:
        return self._max_seq - 2  # [CLS] and [SEP] take two positions

    @property
    def vocab_size(self) -> int:
        return self._vocab

    def tokenize(self, text: str, limit: int | None = None) -> list[int]:
        ids: list[int] = []
        for piece in _pieces(text):
            if piece.isspace():  # whitespace or control characters only: no tokens
                continue
            ids.extend(self._tokenizer.encode(piece, add_special_tokens=False).ids)
            if limit is not None and len(ids) > limit:
                break
        return ids

    def embed(self, items: Sequence[EmbeddingInput]) -> F32:
        most = self.max_tokens
        ids = [self.tokenize(x, most) if isinstance(x, str) else x for x in items]
        lengths = [min(len(x), most) + 2 for x in ids]
        out = np.zeros((len(ids), self._hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: lengths[i])
        for chunk in _passes(order, lengths):
            out[chunk] = self._forward([list(ids[i][:most]) for i in chunk])
        return out

    def _forward(self, batch: list[list[int]]) -> F32:
        length = max(len(x) for x in batch) + 2
        tokens = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, ids in enumerate(batch):
            seq = [self._cls, *ids, self._sep]
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self._word[tokens] + self._pos[:length] + self._type0
        x = _layer_norm(x, *self._ln0, self._eps)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in self._layers:
            x = self._layer(layer, x, bias)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: F32 = (pooled / np.maximum(norm, 1e-12)).astype(np.float32)
        return out

    def _layer(self, layer: _Layer, x: F32, bias: F32) -> F32:
        b, n, h = x.shape
        heads, size = self._heads, h // self._heads
        flat = x.reshape(b * n, h)  # 2-D matmuls go to BLAS; stacked 3-D ones do not
        qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(b, n, 3, heads, size)
        ctx = _attention(qkv, bias).reshape(b * n, h)
        flat = _layer_norm(flat + ctx @ layer.out_w + layer.out_b, *layer.ln1, self._eps)
        out = _layer_norm(_feed_forward(layer, flat), *layer.ln2, self._eps)
        return out.reshape(b, n, h)


def _feed_forward(layer: _Layer, flat: F32) -> F32:
    """``flat + GELU(flat @ up + b) @ down + b``, ``FFN_ROWS`` tokens at a time: the inner
    activations are four times as wide as ``flat`` and GELU takes three more of them."""
    out = np.empty_like(flat)
    for start in range(0, len(flat), FFN_ROWS):
        rows = slice(start, start + FFN_ROWS)
        up = _gelu(flat[rows] @ layer.up_w + layer.up_b)
        np.matmul(up, layer.down_w, out=out[rows])
    out += flat
    out += layer.down_b
    return out


def _attention(qkv: F32, bias: F32) -> F32:
    """Scaled dot-product attention over ``qkv`` (inputs, tokens, 3, heads, head size), a few
    inputs at a time so that the scores (inputs * heads * tokens**2 floats) stay within
    ``ATTENTION_FLOATS``; returns (inputs, tokens, heads * head size)."""
    b, n, _, heads, size = qkv.shape
    out = np.empty((b, n, heads * size), dtype=np.float32)
    step = max(1, ATTENTION_FLOATS // (heads * n * n))
    scale = np.float32(1.0 / np.sqrt(size))
    for start in range(0, b, step):
        part = qkv[start : start + step]
        q = part[:, :, 0].transpose(0, 2, 1, 3)
        k = part[:, :, 1].transpose(0, 2, 3, 1)
        v = part[:, :, 2].transpose(0, 2, 1, 3)
        scores = np.matmul(q, k)
        scores *= scale
        scores += bias[start : start + step]
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = np.matmul(scores, v).transpose(0, 2, 1, 3)
        out[start : start + step] = ctx.reshape(len(part), n, heads * size)
    return out
