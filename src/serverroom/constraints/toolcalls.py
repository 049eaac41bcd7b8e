"""Reading tool calls back out of generated text, whole or while it streams."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from serverroom.constraints.tools import CALL_CLOSE, CALL_OPEN, CALL_SEP
from serverroom.engine.base import TokenConstraint

_NAME_OPEN = CALL_OPEN + '{"name": "'
_ARGS_OPEN = '", "arguments": '
_END = "}" + CALL_CLOSE
_RAW_OPEN = '"}\n'  # a custom tool's call: its input follows as plain text (see tools.py)
_RAW_END = CALL_CLOSE.lstrip("\n")  # ... up to here (a newline before it is not input)


@dataclass
class ParsedCall:
    """A tool call read back from a whole generated text; ``complete`` is false when the text
    ended inside it."""

    name: str
    arguments: str
    complete: bool = True


@dataclass(frozen=True, slots=True)
class TextPiece:
    """Text outside any tool call, safe to show."""

    text: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    """Call ``index`` opened and its name was read."""

    index: int
    name: str


@dataclass(frozen=True, slots=True)
class ArgumentsPiece:
    """More of call ``index``'s arguments, as generated."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class CallDone:
    """Call ``index`` closed with its whole arguments."""

    index: int
    name: str
    arguments: str


ToolEvent = TextPiece | CallStarted | ArgumentsPiece | CallDone


def _hold(text: str, marker: str) -> int:
    """How many trailing characters of ``text`` could begin ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


class ToolCallParser:
    """Incremental parser for the grammar-shaped output; ``feed`` returns what is now known.

    The first non-space character decides: ``<`` starts tool calls, anything else is text.
    A call repeating an earlier one exactly (small models loop) is dropped: calls after the
    first are held back until complete, then released unless they are such a repeat.
    """

    def __init__(self) -> None:
        self.buf = ""
        self.pos = 0
        self.mode: str = "undecided"  # undecided | text | calls | args | done
        self.calls: list[ParsedCall] = []
        self._name = ""
        self._args_start = 0
        self._sent = 0
        self._held: list[ToolEvent] | None = None
        self._raw = False  # the open call is a custom tool's (plain-text input)
        self.duplicates = 0

    def feed(self, text: str) -> list[ToolEvent]:
        self.buf += text
        events: list[ToolEvent] = []
        while True:
            before = (self.mode, self.pos, self._sent)
            self._step(events)
            if (self.mode, self.pos, self._sent) == before:
                return events

    def _step(self, events: list[ToolEvent]) -> None:
        if self.mode == "undecided":
            head = self.buf.lstrip()
            if head:
                if head.startswith("<"):
                    self.mode, self.pos = "calls", len(self.buf) - len(head)
                else:
                    self.mode = "text"
        if self.mode == "text":
            if self.pos < len(self.buf):
                events.append(TextPiece(self.buf[self.pos :]))
                self.pos = len(self.buf)
        elif self.mode == "calls":
            self._open_call(events)
        elif self.mode == "args":
            self._arguments(events)

    def _open_call(self, events: list[ToolEvent]) -> None:
        rest = self.buf[self.pos :]
        if self.calls and rest.startswith(CALL_SEP):
            rest = rest[len(CALL_SEP) :]
            offset = len(CALL_SEP)
        else:
            offset = 0
        if not rest.startswith(_NAME_OPEN):
            return
        name_start = self.pos + offset + len(_NAME_OPEN)
        quote = self.buf.find('"', name_start)
        if quote < 0:
            return
        after = self.buf[quote:]
        if after.startswith(_ARGS_OPEN):
            self._raw, opened = False, len(_ARGS_OPEN)
        elif after.startswith(_RAW_OPEN):
            self._raw, opened = True, len(_RAW_OPEN)
        else:
            return  # the rest of the marker is still to come
        self._name = self.buf[name_start:quote]
        self._args_start = self._sent = quote + opened
        self.mode = "args"
        self.calls.append(ParsedCall(self._name, "", complete=False))
        self._held = [] if len(self.calls) > 1 else None
        self._emit(events, CallStarted(len(self.calls) - 1, self._name))

    def _emit(self, events: list[ToolEvent], event: ToolEvent) -> None:
        (events if self._held is None else self._held).append(event)

    def _arguments(self, events: list[ToolEvent]) -> None:
        index = len(self.calls) - 1
        search = self._args_start
        closing = _RAW_END if self._raw else _END
        while (end := self.buf.find(closing, search)) >= 0:
            args = self.buf[self._args_start : end]
            if self._raw:
                args = args.removesuffix("\n")
            try:
                if not self._raw:
                    json.loads(args)
            except json.JSONDecodeError:
                search = end + 1
                continue
            shown = self._args_start + len(args)  # a raw input's newline before the end is not sent
            if shown > self._sent:
                self._emit(events, ArgumentsPiece(index, self.buf[self._sent : shown]))
            self.calls[index] = ParsedCall(self._name, args)
            self._emit(events, CallDone(index, self._name, args))
            if self._held is not None:
                if any((c.name, c.arguments) == (self._name, args) for c in self.calls[:-1]):
                    self.calls.pop()
                    self.duplicates += 1
                else:
                    events.extend(self._held)
                self._held = None
            self._sent = end
            self.pos = end + len(closing)
            self.mode = "calls"
            return
        upto = len(self.buf) - _hold(self.buf, closing)
        if self._raw and self.buf[self._sent : upto].endswith("\n"):
            upto -= 1  # it may be the newline before the end
        if upto > self._sent:
            self._emit(events, ArgumentsPiece(index, self.buf[self._sent : upto]))
            self._sent = upto
            self.calls[index].arguments = self.buf[self._args_start : upto]

    @property
    def is_calls(self) -> bool:
        return self.mode in ("calls", "args")

    def pending_text(self) -> str:
        """Text still held back when generation ends (e.g. only whitespace so far)."""
        if self.mode == "undecided":
            return self.buf
        return ""


def parse_tool_output(text: str) -> tuple[str | None, list[ParsedCall]]:
    """Split a finished output into content (None when it is calls) and the calls."""
    parser = ToolCallParser()
    parser.feed(text)
    if not parser.is_calls:
        return text, []
    if not parser.calls:
        return text, []
    return None, parser.calls


class RepeatGuard:
    """Wraps a tool-call constraint: ends generation once the model repeats a call exactly."""

    def __init__(self, inner: TokenConstraint, decode: Callable[[int], bytes]) -> None:
        self.inner = inner
        self.decode = decode
        self.parser = ToolCallParser()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def allowed_mask(self) -> npt.NDArray[np.bool_] | None:
        return self.inner.allowed_mask()

    def accept(self, token: int) -> None:
        self.inner.accept(token)
        if self.parser.mode != "text":
            self.parser.feed(self._decoder.decode(self.decode(token)))

    def is_finished(self) -> bool:
        return self.parser.duplicates > 0 or self.inner.is_finished()

    def decide(self, logits: npt.NDArray[np.float32]) -> int | None:
        return self.inner.decide(logits)

    def forced(self) -> list[int]:
        return self.inner.forced()
