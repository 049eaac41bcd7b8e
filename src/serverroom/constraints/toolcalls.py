"""Reading tool calls back out of generated text, whole or while it streams."""

from __future__ import annotations

import json
from dataclasses import dataclass

from serverroom.constraints.tools import CALL_CLOSE, CALL_OPEN, CALL_SEP

_NAME_OPEN = CALL_OPEN + '{"name": "'
_ARGS_OPEN = '", "arguments": '
_END = "}" + CALL_CLOSE


@dataclass
class ParsedCall:
    name: str
    arguments: str
    complete: bool = True


@dataclass(frozen=True)
class TextPiece:
    text: str


@dataclass(frozen=True)
class CallStarted:
    index: int
    name: str


@dataclass(frozen=True)
class ArgumentsPiece:
    index: int
    text: str


@dataclass(frozen=True)
class CallDone:
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
    """

    def __init__(self) -> None:
        self.buf = ""
        self.pos = 0
        self.mode: str = "undecided"  # undecided | text | calls | args | done
        self.calls: list[ParsedCall] = []
        self._name = ""
        self._args_start = 0
        self._sent = 0

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
        name_start = offset + len(_NAME_OPEN)
        end = self.buf.find(_ARGS_OPEN, self.pos + name_start)
        if end < 0:
            return
        self._name = self.buf[self.pos + name_start : end]
        self._args_start = self._sent = end + len(_ARGS_OPEN)
        self.mode = "args"
        self.calls.append(ParsedCall(self._name, "", complete=False))
        events.append(CallStarted(len(self.calls) - 1, self._name))

    def _arguments(self, events: list[ToolEvent]) -> None:
        index = len(self.calls) - 1
        search = self._args_start
        while (end := self.buf.find(_END, search)) >= 0:
            args = self.buf[self._args_start : end]
            try:
                json.loads(args)
            except json.JSONDecodeError:
                search = end + 1
                continue
            if end > self._sent:
                events.append(ArgumentsPiece(index, self.buf[self._sent : end]))
            self.calls[index] = ParsedCall(self._name, args)
            events.append(CallDone(index, self._name, args))
            self._sent = end
            self.pos = end + len(_END)
            self.mode = "calls"
            return
        upto = len(self.buf) - _hold(self.buf, _END)
        if upto > self._sent:
            events.append(ArgumentsPiece(index, self.buf[self._sent : upto]))
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
