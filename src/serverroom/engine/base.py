"""The engine contract: what the API layer may ask of any inference backend.

An engine turns a prompt (token ids) into a stream of sampled tokens. It also tokenizes, renders
chat templates, provides the tokenizer constrained decoding compiles against and reports its
limits; callers use only what ``Engine`` declares, never probe for more. Everything above it
(text assembly, stop strings, usage, response objects) is shared code, so the llama.cpp engine
and the fake test engine behave alike.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from llguidance import LLTokenizer

FinishReason = Literal["stop", "length", "cancelled", "error"]


class TokenConstraint(Protocol):
    """Constrains sampling token by token (grammars, JSON schemas)."""

    def allowed_mask(self) -> npt.NDArray[np.bool_] | None:
        """Tokens allowed next (length = vocab size), or None when anything goes."""

    def accept(self, token: int) -> None:
        """Advance past a sampled token."""

    def is_finished(self) -> bool:
        """Whether the constraint is complete and generation must stop."""

    def decide(self, logits: npt.NDArray[np.float32]) -> int | None:
        """The token for this step when it is a decision rather than a sample (after a tool
        call: another call, or the end), from the masked logits; None to sample as usual."""

    def forced(self) -> list[int]:
        """Tokens the constraint allows as the only continuation from here (a JSON key, its
        punctuation, a call's envelope), in their canonical tokenization; the engine may
        append them without sampling (``engine.fast_forward``) and then ``accept`` each."""


@dataclass(frozen=True)
class SamplingParams:
    """Per-sequence sampling parameters."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    top_logprobs: int | None = None  # None: no logprobs; 0: only the sampled token's
    constraint: TokenConstraint | None = None


@dataclass(frozen=True)
class TopLogprob:
    """One of the most likely tokens at a position, with its log-probability."""

    token: int
    logprob: float


@dataclass(frozen=True)
class SampledToken:
    """One output token, with its log-probability when asked for; ``forced``: appended
    without sampling, the only continuation a constraint allowed (``engine.fast_forward``)."""

    token: int
    logprob: float | None = None
    top: tuple[TopLogprob, ...] = ()
    forced: bool = False


@dataclass(frozen=True)
class GenerationStats:
    """How a generation ended and what it cost."""

    finish_reason: FinishReason
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    error: str | None = None


@dataclass
class GenerationRequest:
    prompt: list[int]
    params: SamplingParams
    request_id: str = ""
    priority: int = 0  # lower runs first; batch work uses a higher number


@dataclass(frozen=True)
class PromptProcessed:
    """Sent once, before the first token: how much of the prompt came from the KV cache."""

    cached_tokens: int


GenerationEvent = PromptProcessed | SampledToken | GenerationStats


@dataclass(frozen=True)
class EngineLoad:
    """What an engine holds now: sequences decoding and waiting, its slots, and its KV cache
    (tokens held by every slot, and the most it can hold)."""

    running: int
    queued: int
    slots: int
    kv_tokens: int = 0
    kv_capacity: int = 0
    threads: int = 0  # CPU threads computing now (0: not a CPU engine)


@dataclass(frozen=True)
class GenerationRecord:
    """How one generation went, for its engine's observer. Times are seconds from when it was
    asked for: ``waited`` until a slot took it (None if none did), ``first_after`` until its
    first token (None without one), ``after`` until it ended; ``reason`` is stop, length,
    cancelled (the consumer stopped early or left) or error."""

    reason: str
    prompt_tokens: int
    cached_tokens: int
    output_tokens: int
    waited: float | None
    first_after: float | None
    after: float
    started_ns: int  # wall clock (time.time_ns) when it was asked for
    forced_tokens: int = 0  # output tokens a constraint forced (appended without sampling)
    upstream: bool = False  # run by an upstream server: no slot here, so no queue wait


class GenerationObserver(Protocol):
    """Hears how each generation of an engine went (metrics, traces)."""

    def finished(self, record: GenerationRecord) -> None: ...


@dataclass(frozen=True)
class ImageInput:
    """An image in a message: its encoded bytes (PNG, JPEG ...), or a base64 ``data:`` URL of
    them (``url``, decoded only when the prompt is tokenized, off the event loop), and where in
    the message's text it goes (a character offset into ``ChatMessage.content``)."""

    data: bytes
    at: int
    url: str = ""

    def read(self) -> bytes:
        if self.data or not self.url:
            return self.data
        return base64.b64decode(self.url.partition(",")[2])


@dataclass(frozen=True)
class ChatMessage:
    """A message ready for a chat template; ``images`` only for a model that reads them."""

    role: str
    content: str
    extra: dict[str, Any] = field(default_factory=dict)
    images: tuple[ImageInput, ...] = ()


@runtime_checkable
class Engine(Protocol):
    """An inference backend for one model."""

    observer: GenerationObserver | None  # hears every generation's timings (see ``textgen``)

    @property
    def context_length(self) -> int:
        """Most tokens (prompt + output) one sequence may hold."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    @property
    def capacity(self) -> int:
        """Most generations it holds at once, running or queued (more is never admitted)."""

    def room(self) -> int:
        """Generations it would admit now, before refusing with ``EngineOverloadedError``."""

    def load(self) -> EngineLoad:
        """Its sequences and KV cache now (for metrics and health)."""

    async def start(self) -> None:
        """Load the model; ``ready`` turns true when done."""

    async def close(self) -> None:
        """Stop generating and free the model."""

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids for text; ``special`` parses control tokens such as ``<|im_start|>``."""

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (empty for control tokens)."""

    def is_end_of_generation(self, token: int) -> bool: ...

    def constraint_tokenizer(self) -> LLTokenizer:
        """The llguidance tokenizer for this vocabulary, which grammars and JSON schemas are
        compiled against (built once per vocabulary, then cached)."""

    def describe(self) -> str:
        """How the model runs here, in a few words for the start-up banner ("" for nothing)."""

    def render_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> str:
        """The prompt text for a conversation, from the model's own chat template."""

    def tokenize_chat(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """The prompt tokens for a conversation: the template's markers as control tokens, the
        messages' text as plain text (a message cannot write a control token). A model that
        reads images encodes the messages' ``images`` here: their spans are negative
        placeholder ids that only this engine's ``generate`` understands. Slow for long
        conversations and for images: call it off the event loop."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Sampled tokens, then one ``GenerationStats``. Closing the iterator cancels."""
