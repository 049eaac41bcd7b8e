"""Responses service: request → plan (prompt, budget, admission) → ``Response`` objects.

``build_output_items`` is the one place generated text becomes output items; ``finish`` is the
one place a finished response is settled, stored and appended to its conversation, so streamed,
non-streamed and background responses end the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import Response
from pydantic import ValidationError

from serverroom.api.common import sampling_params
from serverroom.api.conversations.repository import ConversationRepository
from serverroom.api.responses.items import Item, loc_param
from serverroom.api.responses.prompt import fit_prompt, gather_state
from serverroom.api.responses.repository import ResponseRepository
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.api.responses.structured import (
    check_json_word,
    response_format,
    response_tools,
)
from serverroom.catalog import ModelEntry
from serverroom.constraints import ToolSetup, constrains, plan_output
from serverroom.constraints.schema import strict_by_default
from serverroom.context import AppContext
from serverroom.engine.base import Engine, SamplingParams
from serverroom.engine.textgen import TextEvent, TokenInfo, generate_text
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id
from serverroom.metering import NullTicket, Ticket, Usage
from serverroom.principal import Principal
from serverroom.sse import primed

ENDPOINT = "/v1/responses"
LOGPROBS_INCLUDE = "message.output_text.logprobs"


@dataclass
class ResponsePlan:
    """Everything needed to run one response."""

    ctx: AppContext
    request: ResponseCreateRequest
    principal: Principal
    entry: ModelEntry
    engine: Engine
    input_items: list[Item]
    prompt: list[int]
    params: SamplingParams
    ticket: Ticket
    response_id: str = field(default_factory=lambda: new_id("resp_"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    settled: bool = False
    tools: ToolSetup | None = None  # set when the output may be function calls

    @property
    def store(self) -> bool:
        return self.request.store is not False

    @property
    def background(self) -> bool:
        return bool(self.request.background)


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as echoed: function tools say whether they are strict (as the spec requires)."""
    if tool.get("type") == "function":
        return {**tool, "strict": strict_by_default(tool)}
    return tool


def _echo(request: ResponseCreateRequest) -> dict[str, Any]:
    """The request parameters a ``Response`` echoes back."""
    conversation = request.conversation_id()
    return {
        "instructions": request.instructions,
        "metadata": request.metadata or {},
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "presence_penalty": request.presence_penalty or 0.0,
        "frequency_penalty": request.frequency_penalty or 0.0,
        "tool_choice": request.tool_choice or "auto",
        "tools": [_echo_tool(tool) for tool in request.tools or []],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "background": bool(request.background),
        "conversation": {"id": conversation} if conversation else None,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.prompt_cache_key,
        "prompt_cache_retention": request.prompt_cache_retention,
        "reasoning": request.reasoning or {"effort": None, "summary": None},
        "safety_identifier": request.safety_identifier,
        "service_tier": request.service_tier or "default",
        "store": request.store is not False,
        "text": request.text or {"format": {"type": "text"}, "verbosity": "medium"},
        "top_logprobs": request.top_logprobs or 0,
        "truncation": request.truncation or "disabled",
        "user": request.user,
    }


def response_object(
    plan: ResponsePlan,
    status: str,
    output: list[Item] | None = None,
    **extra: Any,
) -> Response:
    """The SDK ``Response`` for a plan in a given state (``extra``: usage, error ...)."""
    body: dict[str, Any] = {
        "id": plan.response_id,
        "object": "response",
        "created_at": plan.created_at,
        "status": status,
        "model": plan.entry.id,
        "output": output or [],
        "error": None,
        "incomplete_details": None,
        "usage": None,
        "completed_at": None,
        **_echo(plan.request),
        # With no limit asked for, the model's default limit applies, and is shown.
        "max_output_tokens": plan.request.max_output_tokens or plan.params.max_tokens,
        **extra,
    }
    try:
        return Response.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = loc_param("", tuple(first["loc"])).lstrip(".")
        raise InvalidRequestError(
            f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value"
        ) from None


def usage_of(prompt: int, cached: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def _int_times(body: dict[str, Any]) -> None:
    """Timestamps as integers (the SDK types them as floats; the platform sends ints)."""
    for key in ("created_at", "completed_at"):
        if isinstance(body.get(key), float):
            body[key] = int(body[key])


def dump(model: Any) -> dict[str, Any]:
    """An SDK model (a ``Response`` or a stream event) as the JSON the platform sends."""
    out: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, by_alias=True)
    _int_times(out)
    if isinstance(out.get("response"), dict):
        _int_times(out["response"])
    return out


def wants_logprobs(request: ResponseCreateRequest) -> bool:
    return LOGPROBS_INCLUDE in (request.include or [])


def logprob_entries(infos: list[TokenInfo], *, with_bytes: bool) -> list[Item]:
    """Token logprobs as output_text parts (``with_bytes``) or text events show them."""

    def entry(token: str, logprob: float, raw: list[int]) -> Item:
        return {"token": token, "logprob": logprob, **({"bytes": raw} if with_bytes else {})}

    return [
        {
            **entry(info.token, info.logprob, info.bytes),
            "top_logprobs": [entry(t, lp, b) for t, lp, b in info.top],
        }
        for info in infos
    ]


def message_item(item_id: str, text: str, status: str, logprobs: list[Item] | None = None) -> Item:
    part: Item = {
        "type": "output_text",
        "text": text,
        "annotations": [],
        "logprobs": logprobs or [],
    }
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": status,
        "content": [part],
    }


def build_output_items(
    plan: ResponsePlan,
    message_id: str,
    text: str,
    status: str,
    logprobs: list[TokenInfo] | None = None,
) -> list[Item]:
    """The output items for generated text (tool calls and formats extend this)."""
    entries = None
    if wants_logprobs(plan.request):
        entries = logprob_entries(logprobs or [], with_bytes=True)
    return [message_item(message_id, text, status, entries)]


async def plan_response(
    ctx: AppContext, request: ResponseCreateRequest, principal: Principal
) -> ResponsePlan:
    """Validate, build the prompt, and admit the request; raises 4xx before any work."""
    if request.background and request.store is False:
        raise InvalidRequestError(
            "Background responses require 'store' to be true.", param="background"
        )
    entry = ctx.catalog.resolve(request.model)
    engine = await ctx.engines.get(entry)
    state = await gather_state(ctx, request, principal)
    fmt, tools = response_format(request), response_tools(request)
    check_json_word(fmt, request.instructions, state.history + state.new)
    prompt, budget = await asyncio.to_thread(  # templating a long input takes seconds
        fit_prompt,
        engine,
        request.instructions,
        state,
        max_output=request.max_output_tokens,
        truncation=request.truncation,
        tools=tools,
        model_cap=entry.max_output_tokens,
        default_output=entry.default_max_output_tokens,
    )
    output, constraint = None, None
    if constrains(fmt, tools):  # grammar work runs off the event loop
        output = await asyncio.to_thread(
            plan_output, engine, fmt, tools, format_param="text.format"
        )
        constraint = await asyncio.to_thread(output.new_constraint) if output else None
    params = sampling_params(
        max_tokens=budget,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=None,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        top_logprobs=(request.top_logprobs or 0) if wants_logprobs(request) else None,
        constraint=constraint,
    )
    plan = ResponsePlan(
        ctx, request, principal, entry, engine, state.new, prompt, params, NullTicket()
    )
    plan.tools = tools if tools is not None and tools.active else None
    response_object(plan, "in_progress")  # echo fields (tools, text ...) are valid
    # Admission last: a request rejected above must not hold a rate-limit reservation.
    plan.ticket = await ctx.metering.admit(
        principal, entry, endpoint=ENDPOINT, prompt_tokens=len(prompt), max_output_tokens=budget
    )
    return plan


async def settle(plan: ResponsePlan, cached: int, output_tokens: int) -> None:
    if not plan.settled:
        plan.settled = True
        await plan.ticket.settle(Usage(len(plan.prompt), cached, output_tokens))


async def finish(plan: ResponsePlan, response: Response) -> None:
    """Store a finished response and extend its conversation."""
    body = dump(response)
    repo = ResponseRepository(plan.ctx.db)
    project = plan.principal.project_id
    if plan.background:
        saved = await repo.update_status(
            project, plan.response_id, body, only_if=("queued", "in_progress")
        )
        if not saved:
            return  # cancelled meanwhile: the cancel wrote the final state
    elif plan.store:
        await repo.save(project, body, plan.input_items)
    conversation = plan.request.conversation_id()
    if conversation and response.status in ("completed", "incomplete"):
        items = plan.input_items + body["output"]
        await ConversationRepository(plan.ctx.db).add_items(project, conversation, items)


def generate(
    plan: ResponsePlan, request_id: str, on_start: Callable[[], None] | None = None
) -> AsyncIterator[TextEvent]:
    """The engine's text events for a plan."""
    return generate_text(
        plan.engine, plan.prompt, plan.params, request_id=request_id, on_start=on_start
    )


async def start_generation(plan: ResponsePlan, request_id: str) -> AsyncIterator[TextEvent]:
    """Generation, primed: errors before the engine admits the request are raised here (and
    settled); the stream can start while the prompt is computed."""
    started = asyncio.Event()
    try:
        return await primed(generate(plan, request_id, started.set), started)
    except BaseException:
        await settle(plan, 0, 0)
        raise
