"""One response run as the platform's stream events, for plain text and tool calls alike.

``ResponseRun`` renders the generation's results: text goes into one assistant message (its
``output_text`` part, with logprobs when asked for), tool calls become ``function_call``
items with their argument deltas. Plain text is simply the case in which no call appears; a
run with no tools opens its message at once, as the platform does, unless a reasoning item
comes first (``run_reasoning``).
"""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response, ResponseStreamEvent

from serverroom.api.items import Item
from serverroom.api.responses import code_interpreter, file_search
from serverroom.api.responses.events import stream_event
from serverroom.api.responses.objects import (
    ResponsePlan,
    dump,
    logprob_entries,
    wants_logprobs,
)
from serverroom.api.responses.run_reasoning import ReasoningItems, summary_mode
from serverroom.api.responses.run_tools import ToolItems
from serverroom.engine.textgen import TokenInfo
from serverroom.generation import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    ReasoningOut,
    Result,
    TextOut,
)
from serverroom.ids import new_id

Events = list[ResponseStreamEvent]


class ResponseRun(ToolItems, ReasoningItems):
    """The output items of one response as they grow, and the events that tell of it."""

    def __init__(self, plan: ResponsePlan) -> None:
        self.plan = plan
        self.seq = 0
        self.items: list[Item] = []
        self.message: Item | None = None
        self.calls: dict[int, Item] = {}  # call index → its item
        self.with_logprobs = wants_logprobs(plan.request)
        self.infos: list[TokenInfo] = []  # the message's logprobs so far
        self.pending: list[TokenInfo] = []  # logprobs of tokens with no visible text yet
        # Calls the server runs: call index -> (item, call id, arguments so far).
        self.hosted: dict[int, tuple[Item, str, list[str]]] = {}
        self.to_run: tuple[Item, str] | None = None  # a closed server-run call to run
        tools = plan.tools.tools if plan.tools is not None else []
        self.custom = {t.name for t in tools if t.custom is not None}  # custom tools' names
        self.open_custom: set[int] = set()  # call indexes of custom calls still generating
        self.written: list[Item] = []  # container files the code wrote (cited in the answer)
        self.cited: list[Item] = []  # results the answer cites
        self.followup: list[Item] = []  # the search call and its results, for the next round
        self.reasoning: Item | None = None  # the round's reasoning item while the model thinks
        self.thought = ""
        self.reasoning_tokens = 0
        self.summarized = summary_mode(plan) is not None

    def event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        event = stream_event(kind, self.seq, **fields)
        self.seq += 1
        return event

    def lifecycle(self, kind: str, response: Response) -> ResponseStreamEvent:
        return self.event(kind, response=dump(response))

    def start(self) -> Events:
        """Events after ``response.in_progress``: the output made before generating (a
        compaction, MCP listings, approved calls), then a run without tools opens its message."""
        out: Events = []
        for item in self.plan.preamble:
            out += self.added(item)
            if item["type"] == "compaction":
                out.append(self.done(item))
            elif item["type"] == "mcp_list_tools":
                where = self.at(item)
                out.append(self.event("response.mcp_list_tools.in_progress", **where))
                out.append(self.event("response.mcp_list_tools.completed", **where))
                out.append(self.done(item))
            else:
                out.append(self.event("response.mcp_call.in_progress", **self.at(item)))
                out += self.mcp_ran(item)
        return out + ([] if self.plan.may_call or self.plan.thinks else self.open_message())

    def render(self, result: Result) -> Events:
        if isinstance(result, ReasoningOut):
            return self.think(result.text)
        ended = self.end_thinking() if self.reasoning is not None else []
        return ended + self._render(result)

    def _render(self, result: Result) -> Events:
        if isinstance(result, ChoiceDone):
            self.reasoning_tokens += result.reasoning_tokens
            return []
        if isinstance(result, TextOut):
            return self.text(result.text, result.logprobs)
        if isinstance(result, CallOpened):
            if result.name == file_search.NAME and self.plan.searcher is not None:
                return self.open_search(result)
            if self.plan.mcp is not None and result.name in self.plan.mcp.names:
                return self.open_mcp(result)
            if result.name == code_interpreter.NAME and self.plan.interpreter is not None:
                return self.open_code(result)
            if result.name in self.custom:
                return self.custom_call(result)
            return self.open_call(result)
        if isinstance(result, CallArguments | CallClosed) and result.call in self.hosted:
            return self.hosted_call(result)
        if isinstance(result, CallArguments | CallClosed) and result.call in self.open_custom:
            return self.custom_input(result)
        if isinstance(result, CallArguments):
            item = self.calls[result.call]
            item["arguments"] += result.text
            where = {"item_id": item["id"], "output_index": self.items.index(item)}
            return [
                self.event("response.function_call_arguments.delta", **where, delta=result.text)
            ]
        if isinstance(result, CallClosed):
            return self.close_call(self.calls[result.call], "completed", result.arguments)
        return []

    def next_round(self) -> None:
        """A new generation follows (after a server-run call): its call indexes start over."""
        self.calls = {}
        self.hosted = {}
        self.to_run = None

    def open_message(self) -> Events:
        self.message = {
            "type": "message",
            "id": new_id("msg_"),
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.items.append(self.message)
        added = self.event(
            "response.output_item.added", output_index=len(self.items) - 1, item=dict(self.message)
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self.message["content"] = [part]
        return [added, self.event("response.content_part.added", **self.where(), part=dict(part))]

    def where(self) -> dict[str, Any]:
        assert self.message is not None
        index = self.items.index(self.message)
        return {"item_id": self.message["id"], "output_index": index, "content_index": 0}

    def text(self, piece: str, logprobs: list[TokenInfo]) -> Events:
        self.pending.extend(logprobs)
        if not piece:
            return []
        out = [] if self.message is not None else self.open_message()
        assert self.message is not None
        self.message["content"][0]["text"] += piece
        shown, self.pending = self.pending, []
        self.infos.extend(shown)
        entries = logprob_entries(shown, with_bytes=False) if self.with_logprobs else []
        delta = self.event(
            "response.output_text.delta", **self.where(), delta=piece, logprobs=entries
        )
        return [*out, delta]

    def open_call(self, result: CallOpened) -> Events:
        item: Item = {
            "type": "function_call",
            "id": new_id("fc_"),
            "call_id": result.call_id,
            "name": result.name,
            "arguments": "",
            "status": "in_progress",
        }
        self.calls[result.call] = item
        self.items.append(item)
        index = len(self.items) - 1
        return [self.event("response.output_item.added", output_index=index, item=dict(item))]

    def close_call(self, item: Item, status: str, arguments: str) -> Events:
        item["arguments"] = arguments
        item["status"] = status
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [
            self.event("response.function_call_arguments.done", **where, arguments=arguments),
            self.event(
                "response.output_item.done", output_index=where["output_index"], item=dict(item)
            ),
        ]

    def close(self, status: str) -> Events:
        """Close what is open: calls cut off are ``incomplete``, the message gets ``status``."""
        out: Events = []
        for index, item in self.calls.items():
            if index in self.open_custom:
                out.append(self.done(item))  # cut off: its input as far as it got
            elif item.get("status") == "in_progress":
                out += self.close_call(item, "incomplete", item["arguments"])
        for item, _, _ in self.hosted.values():
            if item.get("status", "completed") in ("in_progress", "searching", "calling"):
                item["status"] = "incomplete"  # cut off before it ran
                index = self.items.index(item)
                out.append(
                    self.event("response.output_item.done", output_index=index, item=dict(item))
                )
        asking = any(i["type"] == "mcp_approval_request" for i in self.items)
        thought_only = (
            status == "incomplete" and self.items and self.items[-1]["type"] == "reasoning"
        )
        if self.message is None and not self.calls and not asking and not thought_only:
            out += self.open_message()
        if self.message is not None:
            self.infos.extend(self.pending)
            self.pending = []
            part = self.message["content"][0]
            if self.with_logprobs:
                part["logprobs"] = logprob_entries(self.infos, with_bytes=True)
            self.message["status"] = status
            entries = logprob_entries(self.infos, with_bytes=False) if self.with_logprobs else []
            where = self.where()
            end = len(part["text"])
            notes = file_search.citations(self.cited, end) + code_interpreter.citations(
                self.written, end
            )
            for number, note in enumerate(notes):
                part["annotations"].append(note)
                out.append(
                    self.event(
                        "response.output_text.annotation.added",
                        **where,
                        annotation_index=number,
                        annotation=note,
                    )
                )
            out.append(
                self.event(
                    "response.output_text.done", **where, text=part["text"], logprobs=entries
                )
            )
            out.append(self.event("response.content_part.done", **where, part=dict(part)))
            out.append(
                self.event(
                    "response.output_item.done",
                    output_index=where["output_index"],
                    item=self.message,
                )
            )
        return out
