"""Responses' plan and the objects built from it: the ``Response`` body in any state, its
usage, and the JSON the platform sends for SDK models. The service, the run builder and the
routes all use these; this module imports none of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openai.types.responses import Response
from pydantic import ValidationError

from serverroom.api.items import Item, loc_param
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.catalog import ModelEntry
from serverroom.constraints import ToolSetup
from serverroom.constraints.schema import strict_by_default
from serverroom.context import AppContext
from serverroom.engine.base import SamplingParams
from serverroom.engine.textgen import TokenInfo
from serverroom.errors import InvalidRequestError
from serverroom.generation import Generation
from serverroom.metering import Ticket
from serverroom.principal import Principal

if TYPE_CHECKING:
    from serverroom.api.responses.code_interpreter import CodeInterpreter
    from serverroom.api.responses.file_search import FileSearch
    from serverroom.api.responses.mcp import McpTools
    from serverroom.api.responses.prompt import PromptState

LOGPROBS_INCLUDE = "message.output_text.logprobs"


@dataclass
class ResponsePlan:
    """Everything needed to run one response."""

    ctx: AppContext
    request: ResponseCreateRequest
    principal: Principal
    entry: ModelEntry
    input_items: list[Item]
    gen: Generation  # one job; its tools are set when the output may be function calls
    ticket: Ticket
    response_id: str
    created_at: int = field(default_factory=lambda: int(time.time()))
    settled: bool = False
    state: PromptState | None = None  # what the prompt was built from (for a follow-up round)
    searcher: FileSearch | None = None  # the request's file_search tool
    spent: list[tuple[int, int, int]] = field(default_factory=list)  # rounds done: in, cached, out
    tools_usd: float = 0.0  # what the server-run tool calls cost (billed with the tokens)
    mcp: McpTools | None = None  # the request's MCP servers and their tools
    preamble: list[Item] = field(default_factory=list)  # output made before generating
    hosted_calls: int = 0  # server-run calls made so far
    interpreter: CodeInterpreter | None = None  # the request's code_interpreter tool
    container_id: str | None = None  # where its code runs

    @property
    def hosted_limit(self) -> int:
        """Server-run calls allowed in this response (then the model must answer)."""
        limit = self.request.max_tool_calls
        return limit if limit is not None else self.ctx.settings.tools.max_hosted_calls

    def totals(self, cached: int, output: int) -> tuple[int, int, int]:
        """Input, cached and output tokens of every round, with the current one's counts."""
        rounds = [*self.spent, (self.gen.prompt_tokens, cached, output)]
        return sum(r[0] for r in rounds), sum(r[1] for r in rounds), sum(r[2] for r in rounds)

    @property
    def prompt(self) -> list[int]:
        return self.gen.jobs[0].prompt

    @property
    def params(self) -> SamplingParams:
        return self.gen.jobs[0].params

    @property
    def tools(self) -> ToolSetup | None:
        return self.gen.tools

    @property
    def may_call(self) -> bool:
        """Whether the output may be function calls (else its message opens up front)."""
        upstream = self.gen.upstream
        if upstream is not None:
            return bool(upstream.body.get("tools")) and upstream.body.get("tool_choice") != "none"
        return self.gen.tools is not None

    @property
    def thinks(self) -> bool:
        """Whether the model thinks before it answers (its output opens with reasoning)."""
        thinking = self.gen.thinking
        return thinking is not None and thinking.budget > 0

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
        "reasoning": _reasoning_echo(plan),
        # With no limit asked for, the model's default limit applies, and is shown.
        "max_output_tokens": plan.request.max_output_tokens or plan.params.max_tokens or None,
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


def _reasoning_echo(plan: ResponsePlan) -> dict[str, Any]:
    """``reasoning`` as echoed: a reasoning model shows the effort it ran at."""
    echo = dict(plan.request.reasoning or {"effort": None, "summary": None})
    if plan.entry.reasoning and echo.get("effort") is None:
        echo["effort"] = "medium"
    echo.setdefault("summary", None)
    return echo


def usage_of(prompt: int, cached: int, output: int, reasoning: int = 0) -> dict[str, Any]:
    """Responses usage; ``reasoning`` of the ``output`` tokens were thinking."""
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
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
