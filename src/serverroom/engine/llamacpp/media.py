"""Images in a llama.cpp prompt, through llama.cpp's multimodal library (libmtmd).

A model whose catalog entry names a multimodal projector (``mmproj``) loads it here beside the
text model (``Projector``). An image becomes what the projector makes of it: the text the model
expects around an image (``<fake_token_around_image>`` and the like) as ordinary tokens, and
spans of image tokens. A span is encoded by the vision encoder when the prompt is tokenized,
on the caller's worker thread (never on the decode thread), and kept as embeddings. In the
prompt's token list a span stands as placeholders: a negative id that names the image (from a
hash of its bytes, so equal images share a prefix in the KV cache and different ones never
do), then ``FILLER`` ids. The scheduler decodes a span's embeddings into the KV cache when a
prefill reaches it. The last ``KEEP`` images stay encoded, so a conversation that sends its
images again each turn encodes each once.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp as L
import numpy as np
import numpy.typing as npt

from serverroom.engine.image_header import read_header
from serverroom.errors import EngineError, InvalidRequestError, ServiceUnavailableError

FILLER = -1  # every placeholder of an image span after its first
KEEP = 64
MAX_CHUNKS = 64  # image chunks (slices) one image may become
_TEXT, _IMAGE = 0, 1


def _not_an_image(why: str = "") -> InvalidRequestError:
    return InvalidRequestError(
        "The image data you provided does not represent a valid image. Please check your input"
        " and try again with one of the formats this model reads (PNG, JPEG, GIF, BMP)." + why,
        code="invalid_image_format",
    )


def is_image_start(token: int) -> bool:
    return token < FILLER


@dataclass(eq=False)
class ImageSpan:
    """One image chunk, encoded: ``n_tokens`` embeddings of the text model's input width."""

    key: int
    n_tokens: int
    chunk: Any  # an owned mtmd placeholder chunk (no pixels), freed when the span is collected
    embd: npt.NDArray[np.float32]

    def placeholders(self) -> list[int]:
        return [self.key] + [FILLER] * (self.n_tokens - 1)


@dataclass(frozen=True)
class EncodedImage:
    """An image's prompt tokens (text chunks and span placeholders) and its spans."""

    tokens: tuple[int, ...]
    spans: tuple[ImageSpan, ...]


def _key(digest: bytes, index: int) -> int:
    """A span's first placeholder: negative, below ``FILLER``, from the image's digest."""
    value = int.from_bytes(
        hashlib.blake2b(digest + index.to_bytes(4, "big"), digest_size=8).digest()
    )
    return -2 - (value >> 2)


class Projector:
    """A loaded multimodal projector for one text model: encodes images, decodes their spans."""

    def __init__(self, mmproj: Path, model: Any, *, threads: int, n_batch: int) -> None:
        """``n_batch``: the decode batch; a projector whose images attend to each other
        (non-causal, e.g. Gemma 3) needs each image to fit in one."""
        from llama_cpp import mtmd_cpp as M

        self._m = M
        params = M.mtmd_context_params_default()
        params.use_gpu = False
        params.n_threads = threads
        params.warmup = False
        params.print_timings = False
        ctx = M.mtmd_init_from_file(str(mmproj).encode(), model, params)
        if not ctx:
            raise RuntimeError(f"llama.cpp could not load the projector {mmproj}")
        self.ctx = ctx
        problem = self._unsupported()
        if problem:
            self.close()
            raise RuntimeError(f"{mmproj.name}: {problem}")
        self.n_embd = int(L.llama_model_n_embd_inp(model))
        self.n_batch = n_batch
        self._lock = threading.Lock()  # one encode at a time (the context holds its output)
        self._kept: OrderedDict[bytes, EncodedImage] = OrderedDict()
        self._spans: weakref.WeakValueDictionary[int, ImageSpan] = weakref.WeakValueDictionary()

    def _unsupported(self) -> str:
        M = self._m
        if not M.mtmd_support_vision(self.ctx):
            return "the projector has no vision encoder"
        if M.mtmd_decode_use_mrope(self.ctx):
            # M-RoPE (Qwen2-VL and its kind) gives an image fewer positions than tokens, which
            # the scheduler's one-position-per-token bookkeeping does not model.
            return "projectors that use M-RoPE (Qwen2-VL, Qwen2.5-VL) are not supported locally"
        return ""

    def close(self) -> None:
        """Free the context, after any encode in progress (a later one is refused)."""
        lock = getattr(self, "_lock", None) or threading.Lock()
        with lock:
            if self.ctx:
                self._m.mtmd_free(self.ctx)
                self.ctx = None

    # ----- on a worker thread, while a prompt is tokenized -----
    def image_tokens(self, data: bytes) -> list[int]:
        """An image's prompt tokens, encoding it unless it is one of the last ``KEEP``."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            if not self.ctx:
                raise ServiceUnavailableError("The model is shutting down.")
            kept = self._kept.get(digest)
            if kept is None:
                kept = self._encode(data, digest)
                self._kept[digest] = kept
                while len(self._kept) > KEEP:
                    self._kept.popitem(last=False)
            self._kept.move_to_end(digest)
            return list(kept.tokens)

    def _encode(self, data: bytes, digest: bytes) -> EncodedImage:
        M = self._m
        if read_header(data[: 256 * 1024]) is None:  # libmtmd would try audio and video too
            raise _not_an_image()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        loaded = M.mtmd_helper_bitmap_init_from_buf_wrapper(
            self.ctx, buf, len(data), False, M.mtmd_helper_init_opt_default()
        )
        if loaded.video_ctx:
            M.mtmd_helper_video_free(loaded.video_ctx)
            if loaded.bitmap:
                M.mtmd_bitmap_free(loaded.bitmap)
            raise _not_an_image()
        bitmap = loaded.bitmap
        if not bitmap:
            raise _not_an_image()
        chunks = M.mtmd_input_chunks_init()
        try:
            marker = M.mtmd_default_marker()
            text = M.mtmd_input_text()
            text.text, text.text_len = marker, len(marker)
            text.add_special, text.parse_special = False, True
            bitmaps = (M.mtmd_bitmap_p_ctypes * 1)(bitmap)
            rc = M.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), bitmaps, 1)
            if rc != 0:
                raise _not_an_image(f" (the projector could not read it: {rc})")
            if M.mtmd_input_chunks_size(chunks) > MAX_CHUNKS:
                raise InvalidRequestError(
                    "The image is too large for this model: it makes more than"
                    f" {MAX_CHUNKS} image slices.",
                    code="image_too_large",
                )
            return self._encode_chunks(chunks, digest)
        finally:
            M.mtmd_input_chunks_free(chunks)
            M.mtmd_bitmap_free(bitmap)

    def _encode_chunks(self, chunks: Any, digest: bytes) -> EncodedImage:
        M = self._m
        tokens: list[int] = []
        spans: list[ImageSpan] = []
        for i in range(M.mtmd_input_chunks_size(chunks)):
            chunk = M.mtmd_input_chunks_get(chunks, i)
            kind = M.mtmd_input_chunk_get_type(chunk)
            if kind == _TEXT:
                count = ctypes.c_size_t(0)
                ids = M.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                tokens += [int(ids[k]) for k in range(count.value)]
            elif kind == _IMAGE:
                span = self._encode_span(chunk, _key(digest, len(spans)))
                spans.append(span)
                tokens += span.placeholders()
            else:
                raise _not_an_image(" (it reads as audio)")
        return EncodedImage(tuple(tokens), tuple(spans))

    def _encode_span(self, chunk: Any, key: int) -> ImageSpan:
        M = self._m
        n_tokens = int(M.mtmd_input_chunk_get_n_tokens(chunk))
        if n_tokens > self.n_batch and M.mtmd_decode_use_non_causal(self.ctx, chunk):
            raise InvalidRequestError(
                f"The image makes {n_tokens} image tokens, more than this server decodes at once"
                f" for this model ({self.n_batch}: engine.batch_size).",
                code="image_too_large",
            )
        if M.mtmd_encode_chunk(self.ctx, chunk) != 0:
            raise EngineError("the vision encoder failed on the image")
        out = M.mtmd_get_output_embd(self.ctx)
        embd = np.ctypeslib.as_array(out, shape=(n_tokens * self.n_embd,)).copy()
        kept = M.mtmd_input_chunk_get_placeholder(chunk)
        if not kept:
            raise EngineError("libmtmd could not keep the image chunk")
        span = ImageSpan(key, n_tokens, kept, embd)
        weakref.finalize(span, M.mtmd_input_chunk_free, kept)
        self._spans[key] = span
        return span

    def spans_in(self, prompt: list[int]) -> dict[int, ImageSpan]:
        """The encoded spans a prompt's placeholders name, by position (held from here on)."""
        out: dict[int, ImageSpan] = {}
        for at, token in enumerate(prompt):
            if is_image_start(token):
                span = self._spans.get(token)
                if span is None:  # pushed out by KEEP later images
                    raise ServiceUnavailableError(
                        "An image of this request is no longer encoded here (the server is"
                        " busy with images); please retry."
                    )
                out[at] = span
        return out

    # ----- on the decode thread -----
    def decode(self, lctx: Any, span: ImageSpan, pos: int, seq_id: int, n_batch: int) -> int:
        """Decode a span's embeddings into ``seq_id``'s KV cache at ``pos``; 0 on success."""
        after = L.llama_pos(0)
        embd = span.embd.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        return int(
            self._m.mtmd_helper_decode_image_chunk(
                self.ctx,
                lctx,
                span.chunk,
                embd,
                pos,
                seq_id,
                n_batch,
                ctypes.byref(after),
                self._m.mtmd_helper_post_decode_callback(),  # none
                None,
            )
        )
