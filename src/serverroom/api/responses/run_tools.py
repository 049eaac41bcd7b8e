"""The output items of the tools a response runs or hands over: ``file_search_call``,
``mcp_call`` / ``mcp_approval_request``, ``code_interpreter_call`` and ``custom_tool_call``,
with their stream events. ``ResponseRun`` (run.py) mixes this in; the calls are executed by
``stream.run_events``.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseStreamEvent

from serverroom.api.items import Item
from serverroom.api.responses import code_interpreter, file_search
from serverroom.api.responses.objects import ResponsePlan
from serverroom.generation import CallArguments, CallClosed, CallOpened
from serverroom.ids import new_id

Events = list[ResponseStreamEvent]


class ToolItems:
    """Rendering of tool items; the state it uses is ``ResponseRun``'s."""

    plan: ResponsePlan
    items: list[Item]
    calls: dict[int, Item]
    # Calls the server runs: call index -> (item, call id, arguments so far).
    hosted: dict[int, tuple[Item, str, list[str]]]
    to_run: tuple[Item, str] | None
    open_custom: set[int]
    written: list[Item]
    cited: list[Item]

    def event(self, kind: str, **fields: Any) -> ResponseStreamEvent:
        raise NotImplementedError

    def added(self, item: Item) -> Events:
        """A new output item: it joins the output and ``output_item.added`` tells of it."""
        self.items.append(item)
        shown = {**item, "status": "in_progress"} if "status" in item else dict(item)
        return [
            self.event("response.output_item.added", output_index=len(self.items) - 1, item=shown)
        ]

    def at(self, item: Item) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self.items.index(item)}

    def done(self, item: Item) -> ResponseStreamEvent:
        return self.event(
            "response.output_item.done", output_index=self.items.index(item), item=dict(item)
        )

    def open_mcp(self, result: CallOpened) -> Events:
        """An MCP tool call opens: an ``mcp_call`` the server runs, or an approval request."""
        assert self.plan.mcp is not None
        item = self.plan.mcp.call_item(result.name)
        self.hosted[result.call] = (item, result.call_id, [])
        out = self.added(item)
        if item["type"] == "mcp_call":
            out.append(self.event("response.mcp_call.in_progress", **self.at(item)))
        return out

    def mcp_arguments(self, item: Item, result: CallArguments | CallClosed) -> Events:
        if isinstance(result, CallArguments):
            item["arguments"] += result.text
            if item["type"] != "mcp_call":
                return []
            return [
                self.event("response.mcp_call_arguments.delta", **self.at(item), delta=result.text)
            ]
        item["arguments"] = result.arguments
        if item["type"] != "mcp_call":  # an approval request ends the response
            return [self.done(item)]
        item["status"] = "calling"
        self.to_run = (item, "")
        return [
            self.event(
                "response.mcp_call_arguments.done", **self.at(item), arguments=result.arguments
            )
        ]

    def mcp_ran(self, item: Item) -> Events:
        """An ``mcp_call`` ran (``run_call`` set its output or error)."""
        kind = "failed" if item["status"] == "failed" else "completed"
        self.followup = [item]
        return [self.event(f"response.mcp_call.{kind}", **self.at(item)), self.done(item)]

    def open_search(self, result: CallOpened) -> Events:
        item: Item = {
            "type": "file_search_call",
            "id": new_id("fs_"),
            "status": "in_progress",
            "queries": [],
            "results": None,
        }
        self.hosted[result.call] = (item, result.call_id, [])
        self.items.append(item)
        where = {"item_id": item["id"], "output_index": len(self.items) - 1}
        return [
            self.event(
                "response.output_item.added", output_index=where["output_index"], item=dict(item)
            ),
            self.event("response.file_search_call.in_progress", **where),
        ]

    def hosted_call(self, result: CallArguments | CallClosed) -> Events:
        item, call_id, pieces = self.hosted[result.call]
        if item["type"] == "code_interpreter_call":
            return self.code(item, result)
        if item["type"] != "file_search_call":
            return self.mcp_arguments(item, result)
        if isinstance(result, CallArguments):
            pieces.append(result.text)  # the platform streams no query deltas
            return []
        item["queries"] = file_search.queries_of(result.arguments)
        item["status"] = "searching"
        self.to_run = (item, call_id)
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [self.event("response.file_search_call.searching", **where)]

    def searched(self, item: Item, results: list[Item], shown: bool) -> Events:
        """A search ran: its item is complete (with its results when ``include`` asks)."""
        item["status"] = "completed"
        item["results"] = results if shown else None
        self.cited = results
        where = {"item_id": item["id"], "output_index": self.items.index(item)}
        return [
            self.event("response.file_search_call.completed", **where),
            self.event(
                "response.output_item.done", output_index=where["output_index"], item=dict(item)
            ),
        ]

    def open_code(self, result: CallOpened) -> Events:
        """The model writes code for the code interpreter: a ``code_interpreter_call``."""
        item: Item = {
            "type": "code_interpreter_call",
            "id": new_id("ci_"),
            "code": "",
            "container_id": self.plan.container_id,
            "outputs": None,
            "status": "in_progress",
        }
        self.hosted[result.call] = (item, result.call_id, [])
        added = self.added(item)
        return [*added, self.event("response.code_interpreter_call.in_progress", **self.at(item))]

    def code(self, item: Item, result: CallArguments | CallClosed) -> Events:
        if isinstance(result, CallArguments):
            item["code"] += result.text
            delta = result.text
            return [
                self.event(
                    "response.code_interpreter_call_code.delta", **self.at(item), delta=delta
                )
            ]
        item["code"] = result.arguments
        item["status"] = "interpreting"
        self.to_run = (item, "")
        return [
            self.event(
                "response.code_interpreter_call_code.done", **self.at(item), code=item["code"]
            ),
            self.event("response.code_interpreter_call.interpreting", **self.at(item)),
        ]

    def interpreted(self, item: Item, logs: str, failed: bool, written: list[Item]) -> Events:
        """The code ran: its item is complete (its logs shown when ``include`` asks)."""
        item["status"] = "failed" if failed else "completed"
        if code_interpreter.OUTPUTS_INCLUDE in (self.plan.request.include or []):
            item["outputs"] = [{"type": "logs", "logs": logs}]
        self.written += written
        done = self.event("response.code_interpreter_call.completed", **self.at(item))
        return [done, self.done(item)]

    def custom_call(self, result: CallOpened) -> Events:
        """A custom tool's call: a ``custom_tool_call`` whose ``input`` is plain text."""
        item: Item = {
            "type": "custom_tool_call",
            "id": new_id("ctc_"),
            "call_id": result.call_id,
            "name": result.name,
            "input": "",
        }
        self.calls[result.call] = item
        self.open_custom.add(result.call)
        return self.added(item)

    def custom_input(self, result: CallArguments | CallClosed) -> Events:
        item = self.calls[result.call]
        if isinstance(result, CallArguments):
            item["input"] += result.text
            return [
                self.event(
                    "response.custom_tool_call_input.delta", **self.at(item), delta=result.text
                )
            ]
        item["input"] = result.arguments
        self.open_custom.discard(result.call)
        done = self.event(
            "response.custom_tool_call_input.done", **self.at(item), input=item["input"]
        )
        return [done, self.done(item)]
