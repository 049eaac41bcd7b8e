"""A response on an upstream model: its state and parameters as a Chat Completions request.

Stored state stays serverroom's: the chain or conversation is loaded here (``prompt.gather_state``)
and sent as messages, so any OpenAI-compatible server runs the Responses API, stateless itself.
Function tools, ``tool_choice`` and ``text.format`` become their Chat Completions forms; the
answer comes back through the generation layer like a local model's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from serverroom.api.compaction import summary_message
from serverroom.api.images import chat_content
from serverroom.api.items import Item, item_text, model_items, searched_note
from serverroom.api.responses import file_search
from serverroom.api.responses.objects import wants_logprobs
from serverroom.api.responses.prompt import PromptState
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.constraints import ToolSpec

JSON = dict[str, Any]


def _messages(instructions: str | None, items: list[Item]) -> list[JSON]:
    """Items as chat messages: consecutive function calls share one assistant message."""
    out: list[JSON] = [{"role": "system", "content": instructions}] if instructions else []
    for item in model_items(items):
        kind = item.get("type")
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            out.append({"role": role, "content": chat_content(item, item_text(item))})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else json.dumps(output)
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        elif kind == "file_search_call":
            out.append({"role": "assistant", "content": searched_note(item)})
        elif kind == "compaction":
            out.append({"role": "system", "content": summary_message(item)})
    return out


def _tools(request: ResponseCreateRequest, hosted: Sequence[ToolSpec]) -> JSON:
    functions = [
        t for t in request.tools or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    functions += [
        {"name": t.name, "description": t.description or "", "parameters": t.schema()}
        for t in hosted
    ]
    searching = file_search.parse_tool(request.tools) is not None or bool(hosted)
    if file_search.parse_tool(request.tools) is not None:  # a function the server runs
        spec = file_search.SPEC
        functions.append(
            {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
        )
    if not functions:
        return {}
    tools: list[JSON] = [
        {
            "type": "function",
            "function": {
                k: t[k] for k in ("name", "description", "parameters", "strict") if k in t
            },
        }
        for t in functions
    ]
    out: JSON = {"tools": tools}
    choice = request.tool_choice
    if isinstance(choice, str):
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(choice, dict) and choice.get("type") == file_search.NAME:
        out["tool_choice"] = {"type": "function", "function": {"name": file_search.NAME}}
    elif isinstance(choice, dict) and choice.get("type") == "mcp":
        mine = [t.name for t in hosted if t.server == choice.get("server_label")]
        name = choice.get("name")
        named = [n for n in mine if name in (n, f"{choice.get('server_label')}__{name}")]
        out["tool_choice"] = (
            {"type": "function", "function": {"name": named[0]}} if named else "required"
        )
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        wanted = {ref.get("name") for ref in choice.get("tools") or []}
        out["tools"] = [t for t in tools if t["function"]["name"] in wanted]
        out["tool_choice"] = choice.get("mode", "auto")
    if searching:  # one call at a time: a search is answered before more calls
        out["parallel_tool_calls"] = False
    elif request.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = request.parallel_tool_calls
    return out


def after_search(request: ResponseCreateRequest) -> ResponseCreateRequest:
    """The request as the round after a search sends it: file_search no longer offered."""
    tools = [t for t in request.tools or [] if t.get("type") != file_search.NAME]
    choice = request.tool_choice
    forced = isinstance(choice, dict) and choice.get("type") == file_search.NAME
    return request.model_copy(update={"tools": tools, "tool_choice": None if forced else choice})


def _format(request: ResponseCreateRequest) -> JSON:
    fmt = (request.text or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    if fmt.get("type") == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


def chat_fields(
    request: ResponseCreateRequest,
    state: PromptState,
    max_tokens: int | None,
    hosted: Sequence[ToolSpec] = (),
) -> JSON:
    """The Chat Completions fields of a response request (``upstream.chat_body`` finishes it)."""
    fields: JSON = {
        "messages": _messages(request.instructions, state.history + state.new),
        "max_tokens": max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "user": request.safety_identifier or request.user,
        "reasoning_effort": (request.reasoning or {}).get("effort"),
        **_tools(request, hosted),
        **_format(request),
    }
    if wants_logprobs(request):
        fields["logprobs"] = True
        fields["top_logprobs"] = request.top_logprobs or 0
    return fields
