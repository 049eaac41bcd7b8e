"""Responses service: request → plan (prompt, budget, admission) → ``Response`` objects.

``finish`` is the one place a finished response is stored and appended to its conversation,
so streamed, non-streamed and background responses end the same way (their output items are
built by ``run.ResponseRun``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from openai.types.responses import Response

from serverroom.api.common import primed_results, sampling_params
from serverroom.api.image_data import encoding_turn, has_images, load_images
from serverroom.api.images import check_images, inline_files, takes_images
from serverroom.api.items import Item, render_items
from serverroom.api.reasoning import check_parameters, check_summary, thinking_for
from serverroom.api.responses import code_interpreter, file_search, mcp
from serverroom.api.responses.objects import (
    ResponsePlan,
    dump,
    response_object,
    wants_logprobs,
)
from serverroom.api.responses.prompt import PromptState, fit_prompt, gather_state, render_prompt
from serverroom.api.responses.repository import ResponseRepository
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.api.responses.structured import (
    check_json_word,
    response_format,
    response_tools,
    supported_tools,
)
from serverroom.api.responses.summary import compact_state
from serverroom.api.responses.upstream import after_search, chat_fields
from serverroom.api.upstream import output_reserve, upstream_chat
from serverroom.catalog import ModelEntry
from serverroom.constraints import FormatSpec, ToolSetup, ToolSpec, constrains, plan_output
from serverroom.context import AppContext, Call
from serverroom.engine.base import Engine, SamplingParams, TokenConstraint
from serverroom.errors import InvalidRequestError
from serverroom.generation import Generation, Job, Result
from serverroom.ids import new_id
from serverroom.metering import NullTicket, Usage
from serverroom.storage.conversations import ConversationRepository

ENDPOINT = "/v1/responses"


async def plan_response(call: Call, request: ResponseCreateRequest) -> ResponsePlan:
    """Validate, build the prompt, and admit the request; raises 4xx before any work."""
    if request.background and request.store is False:
        raise InvalidRequestError(
            "Background responses require 'store' to be true.", param="background"
        )
    ctx, principal = call.ctx, call.principal
    request = supported_tools(request, ctx.settings.tools.unsupported)
    entry = ctx.catalog.resolve(request.model)
    check_parameters(
        entry,
        temperature=request.temperature,
        top_p=request.top_p,
        effort=(request.reasoning or {}).get("effort"),
        effort_param="reasoning.effort",
    )
    check_summary(entry, request.reasoning)
    state = await gather_state(ctx, request, principal)
    _verify_reasoning(call, state.new)
    check_images(entry, state.history, state.new)
    fmt = response_format(request)
    check_json_word(fmt, request.instructions, state.history + state.new)
    searcher = file_search.parse_tool(request.tools)
    if searcher is not None:
        await file_search.check_stores(ctx, principal.project_id, searcher)
    inputs = state.new  # what the client sent (the prompt may see more, see _mcp_servers)
    hosted, preamble, state = await _mcp_servers(call, request, state, searcher is not None)
    offered = hosted.offered if hosted is not None else []
    tools = _leaning(response_tools(request, offered), state)
    if entry.upstream is not None:
        if request.context_management:
            raise InvalidRequestError(
                "context_management is not supported with upstream models on this server.",
                param="context_management",
                code="unsupported_value",
            )
        if tools is not None and any(t.custom is not None for t in tools.tools):
            raise InvalidRequestError(
                "Custom tools and code_interpreter are not supported with upstream models on"
                " this server.",
                param="tools",
                code="unsupported_value",
            )
        plan = await _plan_upstream(call, request, entry, state, offered)
        plan.state, plan.searcher, plan.mcp, plan.preamble = state, searcher, hosted, preamble
        plan.input_items = inputs
        return plan
    engine = await ctx.engines.get(entry)
    if takes_images(entry):  # a local vision model: the images' bytes go into the prompt
        state = await _with_image_data(ctx, principal.project_id, state)
    response_id = new_id("resp_")
    compacted = await compact_state(call, engine, request, state, tools, response_id)
    state = compacted.state
    if compacted.item is not None:
        preamble = [compacted.item, *preamble]
    async with encoding_turn(ctx, has_images(state.history + state.new)):
        prompt, budget = await asyncio.to_thread(  # templating a long input takes seconds
            fit_prompt,
            engine,
            request.instructions,
            state,
            max_output=request.max_output_tokens,
            truncation=_truncation(request),
            tools=tools,
            model_cap=entry.max_output_tokens,
            default_output=entry.default_max_output_tokens,
            rendered=compacted.prompt,
        )
    constraint = await _constraint(engine, fmt, tools)
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
    gen = Generation(
        engine,
        [Job(prompt, params)],
        tools=tools if tools is not None and tools.active else None,
        call_ids=response_id,
        priority=call.priority,
        thinking=thinking_for(entry, (request.reasoning or {}).get("effort")),
    )
    plan = ResponsePlan(ctx, request, principal, entry, inputs, gen, NullTicket(), response_id)
    plan.state, plan.searcher, plan.mcp, plan.preamble = state, searcher, hosted, preamble
    plan.spent = compacted.summary.passes  # the compaction's passes are billed with it
    await _container(plan, code_interpreter.parse_tool(request.tools))
    response_object(plan, "in_progress")  # echo fields (tools, text ...) are valid
    # Admission last: a request rejected above must not hold a rate-limit reservation.
    plan.ticket = await call.admit(
        entry, ENDPOINT, prompt_tokens=len(prompt), max_output_tokens=budget
    )
    return plan


async def _mcp_servers(
    call: Call, request: ResponseCreateRequest, state: PromptState, searching: bool
) -> tuple[mcp.McpTools | None, list[Item], PromptState]:
    """The request's MCP servers with their tools listed, the output made before generating
    (new listings, calls the client approved, which run now) and the state the prompt is
    built from (with that output, and any declined call, told to the model)."""
    servers = mcp.parse_tools(request.tools, call.ctx.settings.tools)
    if not servers:
        return None, [], state
    hosted = await mcp.prepare(servers, state.history + state.new)
    taken = {str(t.get("name")) for t in request.tools or [] if t.get("type") == "function"}
    hosted.specs(taken | ({file_search.NAME} if searching else set()))
    ran, told = await mcp.approved_calls(hosted, state.history, state.new)
    preamble = [*hosted.new_items, *ran]
    return hosted, preamble, PromptState(state.history, [*state.new, *preamble, *told])


async def _container(plan: ResponsePlan, tool: code_interpreter.CodeInterpreter | None) -> None:
    """The code_interpreter's container, found or made (a new one is billed)."""
    if tool is None:
        return
    assert plan.state is not None
    context = plan.state.history + plan.state.new
    project = plan.principal.project_id
    plan.interpreter = tool
    plan.container_id, made = await code_interpreter.container_for(plan.ctx, project, tool, context)
    if made:
        plan.tools_usd += code_interpreter.CONTAINER_USD


async def _inlined(ctx: AppContext, project_id: str, state: PromptState) -> PromptState:
    """``state`` as sent to an upstream: images given by file id inlined as data URLs."""
    history = await inline_files(ctx, project_id, state.history)
    return PromptState(history, await inline_files(ctx, project_id, state.new))


async def _with_image_data(ctx: AppContext, project_id: str, state: PromptState) -> PromptState:
    items = await load_images(ctx, project_id, state.history + state.new)
    return PromptState(items[: len(state.history)], items[len(state.history) :])


def _verify_reasoning(call: Call, items: list[Item]) -> None:
    """A replayed reasoning item's ``encrypted_content`` must be one this server sealed."""
    for index, item in enumerate(items):
        sealed = item.get("encrypted_content") if item.get("type") == "reasoning" else None
        if isinstance(sealed, str):
            param = f"input[{index}].encrypted_content"
            call.ctx.sealer.open(sealed, item_id=str(item.get("id")), param=param)


def _truncation(request: ResponseCreateRequest) -> str | None:
    """How a prompt too long for the context is cut: as asked, and with ``context_management``
    always from the oldest items (a compacted prompt that still overflows must not fail)."""
    return "auto" if request.context_management else request.truncation


def _leaning(tools: ToolSetup | None, state: PromptState) -> ToolSetup | None:
    """``tools`` for a prompt of ``state`` (which may end with tool results)."""
    return tools.after(render_items(None, state.history + state.new)) if tools else None


async def _constraint(
    engine: Engine, fmt: FormatSpec | None, tools: ToolSetup | None
) -> TokenConstraint | None:
    """The grammar that holds the output to ``text.format`` and the tool-call envelope (None:
    free text). Grammar work runs off the event loop."""
    if not constrains(fmt, tools):
        return None
    output = await asyncio.to_thread(plan_output, engine, fmt, tools, format_param="text.format")
    return await asyncio.to_thread(output.new_constraint) if output else None


async def _plan_upstream(
    call: Call,
    request: ResponseCreateRequest,
    entry: ModelEntry,
    state: PromptState,
    hosted: list[ToolSpec],
) -> ResponsePlan:
    """An upstream model's plan: the state sent as messages to the upstream's Chat
    Completions, admitted on an estimate of its size."""
    limit = request.max_output_tokens or entry.default_max_output_tokens
    conversation = request.conversation_id()
    sent = await _inlined(call.ctx, call.principal.project_id, state)
    fields = chat_fields(request, sent, limit, hosted)
    chat = upstream_chat(call.ctx, entry, fields, conversation)
    response_id = new_id("resp_")
    gen = Generation(
        None,
        [Job([], SamplingParams(max_tokens=limit or 0))],
        call_ids=response_id,
        priority=call.priority,
        upstream=chat,
        thinking=thinking_for(entry, (request.reasoning or {}).get("effort")),
    )
    plan = ResponsePlan(
        call.ctx, request, call.principal, entry, state.new, gen, NullTicket(), response_id
    )
    response_object(plan, "in_progress")  # echo fields (tools, text ...) are valid
    plan.ticket = await call.admit(
        entry,
        ENDPOINT,
        prompt_tokens=chat.prompt_tokens,
        max_output_tokens=output_reserve(entry, limit),
    )
    return plan


async def settle(plan: ResponsePlan, cached: int, output_tokens: int) -> None:
    """Bill every round of the response once (the current round's counts given)."""
    if not plan.settled:
        plan.settled = True
        used = Usage(*plan.totals(cached, output_tokens), tools_usd=plan.tools_usd)
        await plan.ticket.settle(used)


def _still_offered(plan: ResponsePlan, searched: bool) -> tuple[ToolSetup | None, bool, bool]:
    """The tools of the next round, and whether file_search and the MCP tools are among
    them: a search is not offered twice, past the response's limit of server-run calls no
    server-run tool is, and a ``tool_choice`` that forced a call was met by the last one."""
    spent = plan.hosted_calls >= plan.hosted_limit
    keep_search = plan.searcher is not None and not searched and not spent
    keep_mcp = plan.mcp is not None and not spent
    rest = plan.tools
    if rest is not None and not keep_search:
        rest = rest.without(file_search.NAME)
    if rest is not None and spent:
        rest = rest.without(code_interpreter.NAME)
    if rest is not None and not keep_mcp and plan.mcp is not None:
        for spec in plan.mcp.offered:
            rest = rest.without(spec.name) if rest is not None else None
    if rest is not None and rest.must_call:
        rest = replace(rest, mode="auto", forced=None)
    return rest, keep_search, keep_mcp


async def next_round(
    plan: ResponsePlan, done: tuple[int, int], items: list[Item], *, searched: bool
) -> None:
    """Generate again after a server-run tool call: the prompt grows by ``items`` (the call
    and its output); ``done`` is the finished round's (cached, output) tokens; ``searched``:
    the call was a file_search (not offered again)."""
    assert plan.state is not None
    plan.hosted_calls += 1
    plan.spent.append((plan.gen.prompt_tokens, *done))
    state = PromptState(history=plan.state.history, new=[*plan.state.new, *items])
    plan.state = state
    rest, keep_search, keep_mcp = _still_offered(plan, searched)
    rest = _leaning(rest, state)
    if plan.gen.upstream is not None:
        sent = await _inlined(plan.ctx, plan.principal.project_id, state)
        _next_upstream_round(plan, sent, done[1], keep_search, keep_mcp)
        return
    engine = await plan.ctx.engines.get(plan.entry)
    prompt, budget = await asyncio.to_thread(
        _fit_round, engine, plan, state, rest, max(1, plan.params.max_tokens - done[1])
    )
    constraint = await _constraint(engine, response_format(plan.request), rest)
    params = replace(plan.params, max_tokens=budget, constraint=constraint)
    plan.gen = Generation(
        engine,
        [Job(prompt, params)],
        tools=rest if rest is not None and rest.active else None,
        call_ids=plan.response_id + str(len(plan.spent)),
        priority=plan.gen.priority,
        thinking=plan.gen.thinking,
    )


def _fit_round(
    engine: Engine, plan: ResponsePlan, state: PromptState, tools: ToolSetup | None, left: int
) -> tuple[list[int], int]:
    """The next round's prompt and budget: what is ``left`` of the response's output tokens,
    but without truncation at most what the context still holds (the tool's output grew the
    prompt by more than the call's tokens the budget lost; the round then ends at the
    context's edge, incomplete, instead of failing)."""
    truncation = _truncation(plan.request)
    rendered = None
    if truncation != "auto":
        items = state.history + state.new
        rendered = render_prompt(engine, plan.request.instructions, items, tools)
        left = max(1, min(left, engine.context_length - len(rendered)))
    return fit_prompt(
        engine,
        plan.request.instructions,
        state,
        max_output=left,
        truncation=truncation,
        tools=tools,
        rendered=rendered,
    )


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


def _next_upstream_round(
    plan: ResponsePlan, state: PromptState, used: int, keep_search: bool, keep_mcp: bool
) -> None:
    """An upstream model's next round: its Chat Completions again, with the call and output."""
    request = plan.request if keep_search else after_search(plan.request)
    if request.tool_choice not in (None, "auto", "none"):  # the forced call was made
        request = request.model_copy(update={"tool_choice": "auto"})
    hosted = plan.mcp.offered if plan.mcp is not None and keep_mcp else []
    limit = plan.request.max_output_tokens or plan.entry.default_max_output_tokens
    left = max(1, limit - used) if limit is not None else None
    fields = chat_fields(request, state, left, hosted)
    chat = upstream_chat(plan.ctx, plan.entry, fields, request.conversation_id())
    plan.gen = Generation(
        None,
        [Job([], SamplingParams(max_tokens=left or 0))],
        call_ids=plan.response_id + str(len(plan.spent)),
        priority=plan.gen.priority,
        upstream=chat,
        thinking=plan.gen.thinking,
    )


async def start_generation(plan: ResponsePlan, request_id: str) -> AsyncIterator[Result]:
    """Generation, primed: errors before the engine admits the request are raised here (and
    settled); the stream can start while the prompt is computed."""
    try:
        return await primed_results(plan.gen, request_id)
    except BaseException:
        await settle(plan, 0, 0)
        raise
