"""Embedding engines: text or token ids in, L2-normalised vectors out.

``EmbeddingEngine`` is the protocol the embeddings service uses; ``BertEngine`` is the default
implementation (a pure-numpy BERT forward pass over safetensors weights, see ``bert.py``), and
``EmbeddingRegistry`` loads one engine per catalog model on first use.
"""

from __future__ import annotations

from serverroom.engine.embeddings.base import EmbeddingEngine, EmbeddingInput
from serverroom.engine.embeddings.registry import EmbeddingRegistry

__all__ = ["EmbeddingEngine", "EmbeddingInput", "EmbeddingRegistry"]
