"""llguidance tokenizers for the engines' vocabularies, built once and cached.

* the fake engine's vocabulary (bytes 0-255, BOS 256, EOS 257): :func:`byte_tokenizer`;
* a llama.cpp vocabulary: :func:`tokenizer_from_vocab` (a live ``llama_vocab`` pointer) or
  :func:`tokenizer_from_gguf` (loads the GGUF with ``vocab_only``; the model stays alive).

Each engine's ``constraint_tokenizer()`` (the ``Engine`` protocol) returns one of these.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar

from llguidance import LLTokenizer, TokenizerWrapper

_LOCK = threading.Lock()
_CACHE: dict[str, LLTokenizer] = {}
_KEEP_ALIVE: dict[str, Any] = {}  # GGUF models loaded only for their vocabulary

BYTE_VOCAB = 258
BYTE_BOS = 256
BYTE_EOS = 257


class _ByteVocab:
    """The fake engine's vocabulary in the shape ``TokenizerWrapper`` expects."""

    eos_token_id = BYTE_EOS
    bos_token_id = BYTE_BOS
    tokens: ClassVar[list[bytes]] = [bytes([i]) for i in range(256)] + [b"\xff<s>", b"\xff</s>"]
    special_token_ids: ClassVar[list[int]] = [BYTE_BOS, BYTE_EOS]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text.encode("utf-8") if isinstance(text, str) else text)


def byte_tokenizer() -> LLTokenizer:
    """The tokenizer for bytes-as-tokens (the fake engine)."""
    with _LOCK:
        tok = _CACHE.get("bytes")
        if tok is None:
            tok = _CACHE["bytes"] = LLTokenizer(TokenizerWrapper(_ByteVocab()))
        return tok


def _eog_tokens(vocab: Any) -> list[int]:
    import llama_cpp as L

    n = int(L.llama_vocab_n_tokens(vocab))
    eog = [t for t in range(n) if L.llama_vocab_is_eog(vocab, t)]
    eos = int(L.llama_vocab_eos(vocab))
    if eos >= 0 and eos not in eog:
        eog.insert(0, eos)
    return eog


def tokenizer_from_vocab(vocab: Any, key: str, n_vocab: int | None = None) -> LLTokenizer:
    """The tokenizer for a live llama.cpp vocab pointer, cached under ``key`` (the GGUF path).

    Every end-of-generation token counts as EOS, so the grammar allows any of them once it
    is satisfied. Takes about a second the first time.
    """
    with _LOCK:
        tok = _CACHE.get(key)
        if tok is None:
            from llguidance.llamacpp import lltokenizer_from_vocab

            with warnings.catch_warnings():  # it calls a deprecated llama.cpp alias per token
                warnings.simplefilter("ignore", DeprecationWarning)
                tok = lltokenizer_from_vocab(vocab, n_vocab=n_vocab, eos_token=_eog_tokens(vocab))
            _CACHE[key] = tok
        return tok


def tokenizer_from_gguf(path: str | Path) -> LLTokenizer:
    """The tokenizer for a GGUF file, loading only its vocabulary (cached per path)."""
    key = str(Path(path).resolve())
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    import llama_cpp as L

    L.llama_backend_init()
    params = L.llama_model_default_params()
    params.vocab_only = True
    model = L.llama_model_load_from_file(key.encode(), params)
    if not model:
        raise RuntimeError(f"llama.cpp could not load the vocabulary of {key}")
    with _LOCK:
        _KEEP_ALIVE[key] = model
    return tokenizer_from_vocab(L.llama_model_get_vocab(model), key)
