"""``LlamaCppEngine``: the ``Engine`` protocol over a GGUF model and the batch scheduler."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import llama_cpp as L
from llguidance import LLTokenizer

from serverroom.constraints.tokenizers import tokenizer_from_vocab
from serverroom.engine.base import (
    ChatMessage,
    EngineLoad,
    GenerationEvent,
    GenerationObserver,
    GenerationRequest,
    GenerationStats,
)
from serverroom.engine.llamacpp.media import ImageSpan, Projector
from serverroom.engine.llamacpp.model import GGUFModel
from serverroom.engine.llamacpp.native import NativeChoice, NativeProbeError, Probe, choose
from serverroom.engine.llamacpp.scheduler import Scheduler, ServedSequence
from serverroom.engine.llamacpp.threads import ThreadTuner
from serverroom.engine.slots import overloaded
from serverroom.engine.template import ChatTemplate
from serverroom.errors import EngineError
from serverroom.settings import EngineSettings

logger = logging.getLogger("serverroom.engine.llamacpp")


@L.llama_log_callback  # type: ignore[untyped-decorator]
def _quiet_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    if level >= 4 or level == 2:  # errors (and warnings)
        logger.debug("llama.cpp: %s", text.decode(errors="replace").rstrip())


class LlamaCppEngine:
    """A chat model served by llama.cpp with continuous batching and prefix caching."""

    def __init__(
        self,
        gguf: Path,
        *,
        context_length: int,
        settings: EngineSettings,
        native: NativeChoice | None = None,
        probe_cache: Path | None = None,
        mmproj: Path | None = None,
    ) -> None:
        """``native`` fixes the native settings; without it they are probed (``native.py``),
        with the verdict kept in ``probe_cache``. ``mmproj``: a multimodal projector, for a
        model that reads images (``media.py``)."""
        self.gguf = gguf
        self.mmproj = mmproj
        self._projector: Projector | None = None
        self.observer: GenerationObserver | None = None
        self.settings = settings
        self.native = native
        self._probe_cache = probe_cache
        self._failure: NativeProbeError | None = None
        self._catalog_context = context_length
        self._model: GGUFModel | None = None
        self._ctx: Any = None
        self._scheduler: Scheduler | None = None
        self._template: ChatTemplate | None = None
        self._context_length = min(context_length, settings.slot_context)

    # ----- lifecycle -----
    @property
    def ready(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        if self._failure is not None:  # the probe found this model cannot run here
            raise self._failure
        if self._scheduler is None:
            try:
                await asyncio.to_thread(self._load)
            except NativeProbeError as exc:
                self._failure = exc
                raise

    def _load(self) -> None:
        L.llama_log_set(_quiet_log, ctypes.c_void_p(0))
        s = self.settings
        if self.native is None:
            probe = Probe(self.gguf, self._catalog_context, s)
            self.native = choose(probe, mode=s.extra_buffers, cache_dir=self._probe_cache)
        model = GGUFModel(self.gguf, extra_buffers=self.native.extra_buffers)
        threads = s.threads or os.cpu_count() or 1
        per_slot = min(s.slot_context, self._catalog_context, model.n_ctx_train or 1 << 30)
        params = L.llama_context_default_params()
        params.n_ctx = per_slot * s.slots
        params.n_batch = s.batch_size
        params.n_ubatch = s.batch_size
        params.n_seq_max = s.slots
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = s.kv_unified
        params.no_perf = True
        ctx = L.llama_init_from_model(model.model, params)
        if not ctx:
            model.close()
            raise RuntimeError(f"llama.cpp could not create a context for {self.gguf}")
        self._model = model
        self._ctx = ctx
        self._context_length = per_slot
        self._template = ChatTemplate(
            model.meta("tokenizer.chat_template"),
            bos_token=model.bos_text,
            eos_token=model.eos_text,
        )
        if self.mmproj is not None:
            self._projector = self._load_projector(self.mmproj, threads)
        scheduler = Scheduler(
            ctx,
            model.n_vocab,
            model.eog,
            slots=s.slots,
            batch_size=s.batch_size,
            projector=self._projector,
            fast_forward=s.fast_forward,
            shared_cells=s.kv_unified,
            tuner=ThreadTuner(
                threads,
                lambda n: L.llama_set_n_threads(ctx, n, n),
                adaptive=s.adapt_threads and s.threads is None,
            ),
        )
        scheduler.start()
        self._scheduler = scheduler
        logger.info(
            "loaded %s: %d slots x %d tokens, %d threads, %s",
            self.gguf.name,
            s.slots,
            per_slot,
            threads,
            self.native.describe(),
        )

    def _load_projector(self, mmproj: Path, threads: int) -> Projector:
        from llama_cpp import mtmd_cpp

        mtmd_cpp.mtmd_log_set(_quiet_log, ctypes.c_void_p(0))
        mtmd_cpp.mtmd_helper_log_set(_quiet_log, ctypes.c_void_p(0))
        try:
            return Projector(
                mmproj, self.model.model, threads=threads, n_batch=self.settings.batch_size
            )
        except Exception:
            L.llama_free(self._ctx)
            self._ctx = None
            self.model.close()
            self._model = None
            raise

    async def close(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            await asyncio.to_thread(scheduler.stop)
        if self._projector is not None:
            self._projector.close()
            self._projector = None
        if self._ctx is not None:
            L.llama_free(self._ctx)
            self._ctx = None
        if self._model is not None:
            self._model.close()
            self._model = None

    # ----- model facts -----
    @property
    def model(self) -> GGUFModel:
        if self._model is None:
            raise RuntimeError("the model is not loaded")
        return self._model

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def vocab_size(self) -> int:
        return self.model.n_vocab

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self.model.tokenize(text, special=special)

    def token_bytes(self, token: int) -> bytes:
        return self.model.token_bytes(token)

    def is_end_of_generation(self, token: int) -> bool:
        return token in self.model.eog

    def constraint_tokenizer(self) -> LLTokenizer:
        model = self.model
        return tokenizer_from_vocab(model.vocab, str(model.path), model.n_vocab)

    def describe(self) -> str:
        return self.native.describe() if self.native is not None else ""

    def render_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> str:
        assert self._template is not None
        return self._template.render(messages, tools=tools)

    @property
    def capacity(self) -> int:
        return self.settings.slots + self.settings.max_queue

    def room(self) -> int:
        scheduler = self._scheduler
        if scheduler is None:
            return 0
        return max(0, self.capacity - sum(scheduler.load()))

    def tokenize_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        assert self._template is not None
        segments = self._template.segments(messages, tools=tools)
        projector = self._projector
        return self.model.tokenize_segments(
            segments, projector.image_tokens if projector is not None else None
        )

    def load(self) -> EngineLoad:
        scheduler = self._scheduler
        slots = self.settings.slots
        if scheduler is None:
            return EngineLoad(running=0, queued=0, slots=slots)
        running, queued = scheduler.load()
        return EngineLoad(
            running=running,
            queued=queued,
            slots=slots,
            kv_tokens=scheduler.kv_tokens(),
            kv_capacity=slots * self._context_length,
            threads=scheduler.tuner.current if scheduler.tuner is not None else 0,
        )

    # ----- generation -----
    def _images(self, request: GenerationRequest) -> dict[int, ImageSpan]:
        """The encoded image spans a prompt's placeholders name (none for a text prompt)."""
        if self._projector is None or min(request.prompt, default=0) >= 0:
            return {}
        if request.prompt[-1] < 0:
            raise EngineError("a prompt cannot end with an image")
        return self._projector.spans_in(request.prompt)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        scheduler = self._scheduler
        if scheduler is None:
            raise RuntimeError("the engine is not started")
        running, queued = scheduler.load()
        if queued >= self.settings.max_queue and running >= len(scheduler.slots):
            raise overloaded()
        queue: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        emit = scheduler.outbox.sender(asyncio.get_running_loop(), queue)
        seq = ServedSequence(request, emit, self._context_length, images=self._images(request))
        scheduler.submit(seq)
        finished = False
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, GenerationStats):
                    finished = True
                    return
        finally:
            if not finished:
                scheduler.cancel(seq)
