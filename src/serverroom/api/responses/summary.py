"""Compacting a conversation: the model writes a summary that stands for its items.

``summarize`` is the one place a summary is written, for ``POST /v1/responses/compact``
(``compact``) and for a response whose ``context_management`` threshold is crossed
(``service``). The transcript is summarized a part at a time when the whole does not fit the
model's context (each part's summary opens the next part's prompt), so compacting works
precisely when a conversation has outgrown the context.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from serverroom.api.common import sampling_params
from serverroom.api.compaction import compaction_content, is_user_message
from serverroom.api.items import Item, render_items
from serverroom.api.responses.objects import usage_of
from serverroom.api.responses.prompt import PromptState, render_prompt
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.constraints import ToolSetup
from serverroom.context import Call
from serverroom.engine.base import ChatMessage, Engine
from serverroom.errors import EngineError, InvalidRequestError
from serverroom.generation import Generation, Job, fold, generate
from serverroom.ids import new_id
from serverroom.metering import Usage

ENDPOINT = "/v1/responses/compact"
SUMMARY_TOKENS = 320  # the most tokens one summary may take
LEAD = "The user"  # how every summary begins (measured: the bundled model then summarizes)
_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "system": "Note"}
_ASK = (
    "Summarize the conversation above so that it can be continued from your summary alone:"
    " what the user wants, the facts, tool calls and their results so far, what was decided,"
    " and what is left to do. Write plain sentences, at most 150 words."
)


@dataclass
class Summary:
    """A written summary and what writing it took: (prompt, cached, output) tokens a pass."""

    text: str = ""
    passes: list[tuple[int, int, int]] = field(default_factory=list)

    def totals(self) -> tuple[int, int, int]:
        """Input, cached and output tokens of every pass."""
        return (
            sum(p[0] for p in self.passes),
            sum(p[1] for p in self.passes),
            sum(p[2] for p in self.passes),
        )


def transcript(instructions: str | None, items: list[Item]) -> list[str]:
    """The instructions and items as transcript lines, one a message (earlier summaries
    included, as the model reads them)."""
    lines = [f"Instructions the assistant follows: {instructions}"] if instructions else []
    return lines + [
        f"{_LABELS.get(m.role, m.role)}: {m.content}"
        for m in render_items(None, items)
        if m.content.strip()
    ]


def _prompt(engine: Engine, before: str, lines: list[str]) -> list[int]:
    head = f"Summary of the conversation before this part:\n{before}\n\n" if before else ""
    text = head + "Conversation:\n\n" + "\n\n".join(lines) + "\n\n" + _ASK
    # The reply starts with LEAD: a small model then summarizes instead of answering.
    chat = engine.tokenize_chat([ChatMessage(role="user", content=text)])
    return chat + engine.tokenize(LEAD, special=False)


def _next_part(engine: Engine, before: str, lines: list[str]) -> tuple[list[int], int]:
    """The prompt for the most leading ``lines`` that fit with room for the summary, and how
    many lines it holds (a line too long alone is cut to fit)."""
    room = engine.context_length - SUMMARY_TOKENS
    prompt = _prompt(engine, before, lines)
    if len(prompt) <= room:
        return prompt, len(lines)
    low, high = 0, len(lines) - 1  # the most lines that fit, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        candidate = _prompt(engine, before, lines[:middle])
        if len(candidate) <= room:
            low, prompt = middle, candidate
        else:
            high = middle - 1
    if low > 0:
        return _prompt(engine, before, lines[:low]), low
    line = lines[0]
    while line:
        line = line[: len(line) * 2 // 3]
        prompt = _prompt(engine, before, [line + " [cut]"])
        if len(prompt) <= room:
            return prompt, 1
    raise EngineError("The model's context is too small to write a summary.")


async def summarize(
    engine: Engine,
    lines: list[str],
    summary: Summary,
    *,
    priority: int,
    request_id: str,
    first: tuple[list[int], int] | None = None,
) -> None:
    """Write into ``summary`` a summary of the transcript ``lines`` by ``engine``'s model (the
    passes are counted as they finish, so a failed summary is billed for what it took;
    ``first``: the first part's ``_next_part``, when the caller has it)."""
    while lines:
        if first is None:
            first = await asyncio.to_thread(_next_part, engine, summary.text, lines)
        (prompt, taken), first = first, None
        lines = lines[taken:]
        params = sampling_params(max_tokens=SUMMARY_TOKENS, temperature=0, top_p=None, seed=None)
        gen = Generation(engine, [Job(prompt, params)], priority=priority)
        done = (await fold(generate(gen, request_id)))[0]
        summary.passes.append((done.prompt_tokens, done.cached_tokens, done.completion_tokens))
        summary.text = (LEAD + (done.text or "")).strip() if done.text else summary.text


def compaction_item(summary: str) -> Item:
    return {
        "type": "compaction",
        "id": new_id("cmp_"),
        "encrypted_content": compaction_content(summary),
    }


async def compact(
    call: Call, model: str, instructions: str | None, items: list[Item], request_id: str
) -> dict[str, Any]:
    """``POST /v1/responses/compact``: the user's messages and one compaction item."""
    entry = call.ctx.catalog.resolve(model)
    if entry.upstream is not None:
        raise InvalidRequestError(
            "Compaction is not supported with upstream models on this server.",
            param="model",
            code="unsupported_value",
        )
    engine = await call.ctx.engines.get(entry)
    lines = transcript(instructions, items)
    first = await asyncio.to_thread(_next_part, engine, "", lines)
    ticket = await call.admit(
        entry, ENDPOINT, prompt_tokens=len(first[0]), max_output_tokens=SUMMARY_TOKENS
    )
    summary = Summary()
    try:
        await summarize(
            engine, lines, summary, priority=call.priority, request_id=request_id, first=first
        )
    finally:
        await ticket.settle(Usage(*summary.totals()))
    return {
        "id": new_id("resp_"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*(it for it in items if is_user_message(it)), compaction_item(summary.text)],
        "usage": usage_of(*summary.totals()),
    }


@dataclass
class Compacted:
    """``compact_state``'s answer: the state to generate from, the compaction item made (if
    any) with what writing it took, and the state's rendered prompt when it was rendered."""

    state: PromptState
    item: Item | None = None
    summary: Summary = field(default_factory=Summary)
    prompt: list[int] | None = None


def threshold(request: ResponseCreateRequest, engine: Engine) -> int | None:
    """The prompt size past which a response compacts first (None: it does not)."""
    entries = request.context_management or []
    if not entries:
        return None
    given = entries[0].compact_threshold
    return given if given is not None else engine.context_length * 3 // 4


async def compact_state(
    call: Call,
    engine: Engine,
    request: ResponseCreateRequest,
    state: PromptState,
    tools: ToolSetup | None,
    request_id: str,
) -> Compacted:
    """The state a response is generated from, compacted first when its prompt passes the
    ``context_management`` threshold: every item is summarized into a compaction item (which
    leads the response's output); the prompt reads the user's messages, the summary, then the
    turn being answered (``_turn_start``) verbatim."""
    limit = threshold(request, engine)
    if limit is None:
        return Compacted(state)
    items = state.history + state.new
    prompt = await asyncio.to_thread(render_prompt, engine, request.instructions, items, tools)
    if len(prompt) <= limit:
        return Compacted(state, prompt=prompt)
    lines = transcript(None, items)
    summary = Summary()
    await summarize(engine, lines, summary, priority=call.priority, request_id=request_id)
    item = compaction_item(summary.text)
    cut = _turn_start(items)
    return Compacted(PromptState([*items[:cut], item], items[cut:]), item, summary)


_CALLS = ("function_call", "custom_tool_call", "mcp_call", "code_interpreter_call", "reasoning")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _turn_start(items: list[Item]) -> int:
    """Where the items the model must read verbatim after a summary begin: the last user
    message when the input ends with one, else the last round of tool calls and results."""
    if items and is_user_message(items[-1]):
        return len(items) - 1
    start = len(items)
    while start > 0 and items[start - 1].get("type") in _OUTPUTS:
        start -= 1
    while start > 0 and start < len(items) and items[start - 1].get("type") in _CALLS:
        start -= 1
    return start
