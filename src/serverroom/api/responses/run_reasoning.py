"""A reasoning model's ``reasoning`` output item, with its stream events.

The item comes first in its round's output and grows as the model thinks. Its ``summary``
holds one ``summary_text`` part when ``reasoning.summary`` asks for one (streamed as
``response.reasoning_summary_part.*`` and ``response.reasoning_summary_text.*``, in the
platform's order); serverroom's summary is the thinking itself, not a second pass over it.
With ``include=["reasoning.encrypted_content"]`` the item carries the thinking sealed, for a
stateless client to replay. ``ResponseRun`` (run.py) mixes this in.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseStreamEvent

from serverroom.api.items import Item
from serverroom.api.reasoning import SUMMARIES
from serverroom.api.responses.objects import ResponsePlan
from serverroom.ids import new_id

Events = list[ResponseStreamEvent]
ENCRYPTED_INCLUDE = "reasoning.encrypted_content"


def summary_mode(plan: ResponsePlan) -> str | None:
    """The summary asked for (None: no summary parts)."""
    reasoning = plan.request.reasoning or {}
    mode = reasoning.get("summary") or reasoning.get("generate_summary")
    return str(mode) if mode in SUMMARIES else None


class ReasoningItems:
    """Rendering of reasoning items; the state it uses is ``ResponseRun``'s."""

    plan: ResponsePlan
    items: list[Item]
    reasoning: Item | None  # the round's reasoning item while the model thinks
    thought: str  # its text so far
    reasoning_tokens: int  # every round's reasoning tokens
    summarized: bool  # the request asks for summary parts (``summary_mode``)

    def event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        raise NotImplementedError

    def added(self, item: Item) -> Events:  # ``ToolItems.added``
        raise NotImplementedError

    def done(self, item: Item) -> ResponseStreamEvent:  # ``ToolItems.done``
        raise NotImplementedError

    def _summary_at(self) -> dict[str, Any]:
        assert self.reasoning is not None
        index = self.items.index(self.reasoning)
        return {"item_id": self.reasoning["id"], "output_index": index, "summary_index": 0}

    def think(self, text: str) -> Events:
        """More of the round's thinking: the item opens on the first piece."""
        out: Events = []
        if self.reasoning is None:
            self.reasoning = {"type": "reasoning", "id": new_id("rs_"), "summary": []}
            self.thought = ""
            out += self.added(self.reasoning)
            if self.summarized:
                part = {"type": "summary_text", "text": ""}
                out.append(
                    self.event(
                        "response.reasoning_summary_part.added", **self._summary_at(), part=part
                    )
                )
        self.thought += text
        if self.summarized and text:
            out.append(
                self.event(
                    "response.reasoning_summary_text.delta", **self._summary_at(), delta=text
                )
            )
        return out

    def end_thinking(self) -> Events:
        """The round's thinking is over (its answer begins, or the budget ran out)."""
        item = self.reasoning
        if item is None:
            return []
        out: Events = []
        text = self.thought.strip()
        if self.summarized:
            where = self._summary_at()
            part = {"type": "summary_text", "text": text}
            out.append(self.event("response.reasoning_summary_text.done", **where, text=text))
            out.append(self.event("response.reasoning_summary_part.done", **where, part=part))
            item["summary"] = [part]
        if ENCRYPTED_INCLUDE in (self.plan.request.include or []):
            item["encrypted_content"] = self.plan.ctx.sealer.seal(text)
        out.append(self.done(item))
        self.reasoning = None
        return out
