"""Thinking before answering: the budget an effort buys, and the think-block parser.

A reasoning model thinks in a delimited block (``<think>`` … ``</think>`` by default) before it
answers. For a model whose template thinks natively (Qwen3, DeepSeek-R1 distills, SmolLM3) the
model writes the block itself; for one that does not, serverroom opens the block after the
prompt (``scaffold``) and the model's scratch work fills it, under a grammar that ends it at the
effort's token budget. Either way the block is generated first, on its own (``run.py``), then
the answer follows it in the prompt, under whatever constraint the request asks for.

``ThinkSplitter`` reads generated text into reasoning and answer, whether the tags arrive whole
or split across tokens, and with a block left unterminated (all of it is reasoning).
``TagScrubber`` takes the block's tags out of a scaffolded model's answer: such a model, shown a
closed block it did not write, now and then closes it again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EFFORT_BUDGETS", "TagScrubber", "ThinkSplitter", "Thinking", "think_grammar"]

# Reasoning tokens an effort allows (the platform's default effort is medium).
EFFORT_BUDGETS = {
    "none": 0,
    "minimal": 16,
    "low": 64,
    "medium": 192,
    "high": 512,
    "xhigh": 1024,
    "max": 2048,
}
DEFAULT_EFFORT = "medium"


@dataclass(frozen=True)
class Thinking:
    """One request's thinking phase. ``budget``: most reasoning tokens (0: no thinking);
    ``scaffold``: the model does not think natively, so its block is held to a grammar (see
    :func:`think_grammar`) and, with no budget, left out; otherwise an empty block tells a
    native thinker not to think, as its own templates do."""

    budget: int
    scaffold: bool = True
    open: str = "<think>"
    close: str = "</think>"

    @classmethod
    def for_effort(cls, effort: str | None, *, scaffold: bool, tags: tuple[str, str]) -> Thinking:
        return cls(EFFORT_BUDGETS[effort or DEFAULT_EFFORT], scaffold, tags[0], tags[1])

    def opened_by(self, prompt_tail: str) -> bool:
        """Whether a prompt ending in ``prompt_tail`` already opened the block (templates
        of native thinkers may)."""
        return prompt_tail.rstrip().endswith(self.open)

    def prefill(self, opened: bool) -> str:
        """What follows the prompt before the model thinks: the block's opening."""
        return "" if opened else self.open + "\n"

    def answer_prefix(self, thought: str, opened: bool) -> str:
        """What follows the prompt before the answer: the whole block, closed."""
        if self.budget == 0 and self.scaffold:
            return ""
        body = thought.strip()
        return self.prefill(opened) + (body + "\n" if body else "\n") + self.close + "\n\n"


def think_grammar(budget: int, close: str) -> str:
    """The scratch block's grammar: some text, at most ``budget`` tokens, then its end (the
    model's end of turn or ``close``)."""
    quoted = close.replace("\\", "\\\\").replace('"', '\\"')
    return f'start: thought "{quoted}"?\nthought[max_tokens={budget}]: /(?s:\\s*\\S.*)/\n'


class ThinkSplitter:
    """Splits a stream of generated text into reasoning and answer.

    The block may open only at the start (after whitespace); ``opened``: the prompt already
    opened it. A tag split across pieces is held back until it is known; a block never closed
    is reasoning to the end.
    """

    def __init__(self, open_tag: str = "<think>", close_tag: str = "</think>", *, opened: bool):
        self.open_tag = open_tag
        self.close_tag = close_tag
        self.state = "inside" if opened else "start"
        self.held = ""
        self.reasoning = ""
        self.answer = ""

    def feed(self, text: str) -> list[tuple[bool, str]]:
        """Pieces of ``text`` now known: (is reasoning, text)."""
        self.held += text
        out: list[tuple[bool, str]] = []
        while self.held:
            if self.state == "start":
                head = self.held.lstrip()
                if self.open_tag.startswith(head):
                    return out  # could still be the opening tag
                if head.startswith(self.open_tag):
                    self.held = head[len(self.open_tag) :].lstrip("\n")
                    self.state = "inside"
                    continue
                self.state = "after"
            if self.state == "after":
                out.append(self._take(False, self.held))
                self.held = ""
                break
            end = self.held.find(self.close_tag)
            if end >= 0:
                if end:
                    out.append(self._take(True, self.held[:end]))
                self.held = self.held[end + len(self.close_tag) :].lstrip("\n")
                self.state = "after"
                continue
            keep = _partial_suffix(self.held, self.close_tag)
            piece = self.held[: len(self.held) - keep]
            if piece:
                out.append(self._take(True, piece))
            self.held = self.held[len(piece) :]
            break
        return [p for p in out if p[1]]

    def flush(self) -> list[tuple[bool, str]]:
        """The rest at the end: reasoning if the block never closed, else answer."""
        rest, self.held = self.held, ""
        if not rest:
            return []
        inside = self.state == "inside"
        return [self._take(inside, rest)]

    def _take(self, reasoning: bool, text: str) -> tuple[bool, str]:
        if reasoning:
            self.reasoning += text
        else:
            self.answer += text
        return reasoning, text


class TagScrubber:
    """Removes every occurrence of ``tags`` from a stream of text, holding back a piece that
    could be the start of one until the next piece (or ``flush``) decides."""

    def __init__(self, tags: tuple[str, ...]) -> None:
        self.tags = tags
        self.held = ""

    def scrub(self, text: str) -> str:
        """``text`` whole, without the tags (also one that removing another one formed)."""
        while any(tag in text for tag in self.tags):
            for tag in self.tags:
                text = text.replace(tag, "")
        return text

    def feed(self, text: str) -> str:
        """What of the stream so far can be shown now."""
        self.held = self.scrub(self.held + text)
        keep = max(_partial_suffix(self.held, tag) for tag in self.tags)
        shown, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        return shown

    def flush(self) -> str:
        """The held-back rest at the end (it was not a tag)."""
        rest, self.held = self.held, ""
        return rest


def _partial_suffix(text: str, tag: str) -> int:
    """How many trailing characters of ``text`` could begin ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
