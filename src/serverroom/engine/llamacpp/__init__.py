"""The llama.cpp engine: continuous batching over ``llama_decode`` with prefix caching."""

from serverroom.engine.llamacpp.engine import LlamaCppEngine

__all__ = ["LlamaCppEngine"]
