"""A loaded GGUF model and its vocabulary, through llama-cpp-python's low-level bindings."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from pathlib import Path

import llama_cpp as L

from serverroom.engine.template import Segment, join_safe
from serverroom.errors import InvalidRequestError

_BACKEND_READY = False


def init_backend() -> None:
    global _BACKEND_READY  # process-wide llama.cpp state: initialise once
    if not _BACKEND_READY:
        L.llama_backend_init()
        _BACKEND_READY = True


class GGUFModel:
    """Model weights, vocabulary, special tokens and the chat template from the GGUF."""

    def __init__(self, path: Path, *, extra_buffers: bool = True) -> None:
        init_backend()
        params = L.llama_model_default_params()
        # Extra buffer types repack weights for the CPU's fastest kernels (AMX, AVX-512 ...);
        # off, every matrix multiply runs llama.cpp's plain CPU kernels (see native.py).
        params.use_extra_bufts = extra_buffers
        self.path = path
        self.model = L.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = int(L.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(L.llama_model_n_ctx_train(self.model))
        self._pieces = [self._piece(t, special=False) for t in range(self.n_vocab)]
        # The text of every control token (<|im_start|> ...): empty as plain text, not as special.
        self.control_texts = frozenset(
            text
            for t in range(self.n_vocab)
            if not self._pieces[t]
            and (text := self._piece(t, special=True).decode(errors="replace"))
        )
        self.eog = frozenset(t for t in range(self.n_vocab) if L.llama_vocab_is_eog(self.vocab, t))
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        bos, eos = int(L.llama_vocab_bos(self.vocab)), int(L.llama_vocab_eos(self.vocab))
        self.bos_text = self._piece(bos, special=True).decode(errors="replace") if bos >= 0 else ""
        self.eos_text = self._piece(eos, special=True).decode(errors="replace") if eos >= 0 else ""
        self.bos = bos

    def _piece(self, token: int, *, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        return buf.raw[: max(n, 0)]

    def token_bytes(self, token: int) -> bytes:
        return self._pieces[token] if 0 <= token < self.n_vocab else b""

    def tokenize(
        self, text: str, *, special: bool = True, add_bos: bool | None = None
    ) -> list[int]:
        """Token ids; ``special`` parses control-token text, ``add_bos`` defaults to the
        vocabulary's own rule."""
        bos = self.add_bos if add_bos is None else add_bos
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buf = (L.llama_token * capacity)()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, bos, special)
        if n < 0:
            capacity = -n
            buf = (L.llama_token * capacity)()
            n = L.llama_tokenize(self.vocab, data, len(data), buf, capacity, bos, special)
        tokens = list(buf[:n])
        if len(tokens) > 1 and tokens[0] == tokens[1] == self.bos:
            tokens = tokens[1:]  # the template already wrote BOS
        return tokens

    def tokenize_segments(
        self,
        segments: Iterable[Segment],
        image_tokens: Callable[[bytes], list[int]] | None = None,
    ) -> list[int]:
        """A rendered prompt's tokens: control tokens are parsed in the template's text only;
        message text that holds a control token's text is tokenized as plain text. Images
        become what ``image_tokens`` makes of them (a model without it refuses them)."""
        tokens: list[int] = []
        for i, segment in enumerate(join_safe(list(segments), self.control_texts)):
            if segment.image is not None:
                if image_tokens is None:
                    raise InvalidRequestError(
                        "Content type 'input_image' is not supported by this model; only text"
                        " parts are.",
                        code="unsupported_content_type",
                    )
                tokens += image_tokens(segment.image)
                continue
            bos = None if i == 0 else False  # BOS (where the vocabulary adds one) leads once
            tokens += self.tokenize(segment.text, special=segment.control, add_bos=bos)
        return tokens

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.model:
            L.llama_model_free(self.model)
            self.model = None
