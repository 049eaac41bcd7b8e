"""A BERT sentence encoder in pure numpy (all-MiniLM-L6-v2 and other BERT-style models).

Reads the weights with ``safetensors`` (numpy arrays, no torch) and tokenizes with the
``tokenizers`` package from ``tokenizer.json``. Inputs are sorted by length and padded per
chunk; the output is mean pooling over real tokens followed by L2 normalisation, as the
model's sentence-transformers config (Transformer → Pooling(mean) → Normalize) prescribes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serverroom.engine.embeddings.base import EmbeddingInput

F32 = npt.NDArray[np.float32]
CHUNK = 32  # inputs per forward pass


def _erf(x: F32) -> F32:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for float32 GELU."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    out: F32 = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def _gelu(x: F32) -> F32:
    return (0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))).astype(np.float32)


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

    def tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens(self, item: EmbeddingInput) -> int:
        return len(self.tokenize(item)) if isinstance(item, str) else len(item)

    def embed(self, items: Sequence[EmbeddingInput]) -> F32:
        ids = [self.tokenize(x) if isinstance(x, str) else list(x) for x in items]
        out = np.zeros((len(ids), self._hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            out[chunk] = self._forward([ids[i][: self.max_tokens] for i in chunk])
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
        q = qkv[:, :, 0].transpose(0, 2, 1, 3)
        k = qkv[:, :, 1].transpose(0, 2, 3, 1)
        v = qkv[:, :, 2].transpose(0, 2, 1, 3)
        scores = np.matmul(q, k) * np.float32(1.0 / np.sqrt(size)) + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        ctx = np.matmul(probs, v).transpose(0, 2, 1, 3).reshape(b * n, h)
        flat = _layer_norm(flat + ctx @ layer.out_w + layer.out_b, *layer.ln1, self._eps)
        up = _gelu(flat @ layer.up_w + layer.up_b)
        out = _layer_norm(flat + up @ layer.down_w + layer.down_b, *layer.ln2, self._eps)
        return out.reshape(b, n, h)
