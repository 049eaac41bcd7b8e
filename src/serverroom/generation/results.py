"""The neutral results of a generation, which every endpoint renders.

A generation runs one or more choices (Chat's ``n``, legacy Completions' prompts times ``n``, one
for a response). Its stream interleaves the choices' results: visible text with its logprobs,
tool calls as they open, grow and close, and each choice's end with its finish reason, its
whole text or calls, and its token counts. A reasoning model's thinking comes first, as
reasoning results. A non-streaming answer is the fold of the stream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from serverroom.engine.textgen import TokenInfo

__all__ = [
    "CallArguments",
    "CallClosed",
    "CallOpened",
    "ChoiceDone",
    "Finish",
    "ReasoningOut",
    "Result",
    "TextOut",
    "ToolCall",
    "call_id",
]

Finish = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class TextOut:
    """Text of one choice that is now safe to show (never a split character or a stop)."""

    choice: int
    text: str
    logprobs: list[TokenInfo] = field(default_factory=list)


@dataclass(frozen=True)
class ReasoningOut:
    """More of one choice's reasoning (its thinking, before the answer)."""

    choice: int
    text: str


@dataclass(frozen=True)
class CallOpened:
    """A tool call began: its id and the function's name are known."""

    choice: int
    call: int
    call_id: str
    name: str


@dataclass(frozen=True)
class CallArguments:
    """More of a tool call's arguments (JSON text, streamed as generated)."""

    choice: int
    call: int
    text: str


@dataclass(frozen=True)
class CallClosed:
    """A tool call's arguments are complete (valid JSON)."""

    choice: int
    call: int
    arguments: str


@dataclass(frozen=True)
class ToolCall:
    """A tool call of a finished choice; ``complete`` is false when generation cut it off."""

    call_id: str
    name: str
    arguments: str
    complete: bool = True


@dataclass(frozen=True)
class ChoiceDone:
    """One choice ended. ``text`` is ``None`` when the output was tool calls;
    ``completion_tokens`` counts the reasoning (``reasoning_tokens`` of them, its text
    ``reasoning``: None when the model did not think)."""

    choice: int
    finish_reason: Finish
    text: str | None
    calls: list[ToolCall]
    logprobs: list[TokenInfo]
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning: str | None = None
    reasoning_tokens: int = 0


Result = ReasoningOut | TextOut | CallOpened | CallArguments | CallClosed | ChoiceDone


def call_id(seed: str, choice: int, call: int) -> str:
    """A tool call's id, derived from its place so that a stream and the stored answer name
    each call the same (seeds are random ids, so these are unique)."""
    digest = hashlib.blake2b(f"{seed}/{choice}/{call}".encode(), digest_size=12)
    return "call_" + digest.hexdigest()
