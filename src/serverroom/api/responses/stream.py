"""One response run as the platform's stream events, for every mode.

``run_events`` turns the generation's results into SDK event objects with sequence numbers,
ending in ``response.completed`` / ``.incomplete`` / ``.failed`` after the response is stored.
Streaming serialises the events, the plain and background modes just keep the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent

from serverroom.api.common import primed_results
from serverroom.api.responses import code_interpreter, file_search, mcp
from serverroom.api.responses.objects import ResponsePlan, dump, response_object, usage_of
from serverroom.api.responses.run import Events, ResponseRun
from serverroom.api.responses.service import finish, next_round, settle
from serverroom.errors import APIError
from serverroom.generation import ChoiceDone, Result
from serverroom.sse import sse_event

logger = logging.getLogger("serverroom.responses")
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _final(
    plan: ResponsePlan, run: ResponseRun, done: ChoiceDone | None, error: APIError | None
) -> tuple[Response, Events]:
    """The terminal response and the events that close its items."""
    cached = done.cached_tokens if done else 0
    output_tokens = done.completion_tokens if done else sum(plan.gen.tokens)  # as billed
    usage = usage_of(*plan.totals(cached, output_tokens), reasoning=run.reasoning_tokens)
    cut = done is not None and done.finish_reason == "length"
    status = "failed" if error else "incomplete" if cut else "completed"
    closing = run.end_thinking() + run.close("completed" if status == "completed" else "incomplete")
    extra: dict[str, Any] = {"usage": usage}
    if error is not None:
        extra["error"] = {"code": "server_error", "message": error.message}
    elif cut:
        extra["incomplete_details"] = {"reason": "max_output_tokens"}
    else:
        extra["completed_at"] = int(time.time())
    return response_object(plan, status, run.items, **extra), closing


async def run_events(
    plan: ResponsePlan, stream: AsyncIterator[Result]
) -> AsyncIterator[ResponseStreamEvent]:
    """Every event of one response, ending after it is stored. Closing it stops generation."""
    run = ResponseRun(plan)
    start = response_object(plan, "in_progress")
    yield run.lifecycle("response.created", start)
    yield run.lifecycle("response.in_progress", start)
    for event in run.start():
        yield event
    done: ChoiceDone | None = None
    error: APIError | None = None
    try:
        while True:
            async for result in stream:
                if isinstance(result, ChoiceDone):
                    done = result
                for event in run.render(result):
                    yield event
            if run.to_run is None or done is None:
                break
            kind = run.to_run[0]["type"]
            searched = kind == "file_search_call"
            runner = (
                _search if searched else _interpret if kind == "code_interpreter_call" else _call
            )
            for event in await runner(plan, run):
                yield event
            await close_events(stream)
            counts = (done.cached_tokens, done.completion_tokens)
            await next_round(plan, counts, run.followup, searched=searched)
            run.next_round()
            done = None
            stream = await primed_results(plan.gen, plan.response_id)
    except APIError as exc:
        logger.warning("response %s failed: %s", plan.response_id, exc.message)
        error = exc
    finally:
        await close_events(stream)
        await settle(
            plan,
            done.cached_tokens if done else 0,
            done.completion_tokens if done else sum(plan.gen.tokens),
        )
    response, closing = _final(plan, run, done, error)
    for event in closing:
        yield event
    await finish(plan, response)
    yield run.lifecycle(f"response.{response.status}", response)


async def _search(plan: ResponsePlan, run: ResponseRun) -> Events:
    """Run the file_search call the model made; its events, and what the model reads next."""
    assert run.to_run is not None and plan.searcher is not None
    item, call_id = run.to_run
    assert plan.state is not None
    item["queries"] = file_search.with_question(item["queries"], plan.state.new)
    with traced_tool(plan, "file_search", "file_search"):
        results = await file_search.search(plan.ctx, plan.searcher, item["queries"])
    plan.tools_usd += file_search.CALL_USD
    shown = file_search.RESULTS_INCLUDE in (plan.request.include or [])
    run.followup = file_search.followup_items(call_id, item["queries"], results)
    return run.searched(item, results, shown)


async def _call(plan: ResponsePlan, run: ResponseRun) -> Events:
    """Run the MCP tool call the model made; its events (the model reads the item next)."""
    assert run.to_run is not None and plan.mcp is not None
    item = run.to_run[0]
    with traced_tool(plan, str(item.get("name", "mcp")), "mcp"):
        await mcp.run_call(plan.mcp, item)
    return run.mcp_ran(item)


async def _interpret(plan: ResponsePlan, run: ResponseRun) -> Events:
    """Run the code the model wrote; its events, and what the model reads next."""
    assert run.to_run is not None
    item = run.to_run[0]
    with traced_tool(plan, "code_interpreter", "code_interpreter"):
        result, saved = await code_interpreter.interpret(plan.ctx, plan.principal.project_id, item)
    text = code_interpreter.report(result, saved)
    run.followup = code_interpreter.followup_items(item, text)
    failed = result.timed_out or result.exit_code not in (0, None)
    return run.interpreted(item, result.logs, failed, saved)


def traced_tool(plan: ResponsePlan, name: str, kind: str) -> AbstractContextManager[None]:
    tracing = plan.ctx.tracing
    return tracing.tool(name, kind) if tracing is not None else nullcontext()


async def close_events(events: AsyncIterator[Any]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()


async def final_response(events: AsyncIterator[ResponseStreamEvent]) -> Response:
    """Run a response to its end and return the final ``Response``."""
    last: ResponseStreamEvent | None = None
    async for event in events:
        last = event
    assert last is not None and last.type in TERMINAL
    response = getattr(last, "response", None)
    assert isinstance(response, Response)
    return response


async def sse_body(events: AsyncIterator[ResponseStreamEvent]) -> AsyncIterator[bytes]:
    """The events as SSE (``event:`` line + JSON data); closing it closes the run."""
    try:
        async for event in events:
            yield sse_event(dump(event), event=event.type)
    finally:
        await close_events(events)
