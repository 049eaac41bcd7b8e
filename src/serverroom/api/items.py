"""Items, shared by Responses and Conversations: validating client input items, normalising
them for storage, rendering them.

Every item the server keeps (a response's input, its output, a conversation's items) is stored
in one normalised, output-style form with an ``id`` and a ``status``, so the same dicts can be
listed (``input_items``, conversation items), replayed as context and rendered as chat messages.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from serverroom.api.compaction import compacted, compaction_summary, summary_message
from serverroom.api.image_data import with_images
from serverroom.api.images import image_part
from serverroom.api.schemas import RequestModel
from serverroom.engine.base import ChatMessage
from serverroom.errors import InvalidRequestError
from serverroom.ids import new_id

Item = dict[str, Any]
TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")


class ContentPartIn(RequestModel):
    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None  # input_image: a data or http(s) URL
    file_id: str | None = None  # input_image: a file of the Files API
    detail: str | None = None


class MessageIn(RequestModel):
    type: Literal["message"] | None = None
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPartIn]


class FunctionCallIn(RequestModel):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputIn(RequestModel):
    """A function's or a custom tool's output."""

    type: Literal["function_call_output", "custom_tool_call_output"]
    id: str | None = None
    call_id: str
    output: str | list[ContentPartIn]


class CustomToolCallIn(RequestModel):
    type: Literal["custom_tool_call"]
    id: str | None = None
    call_id: str
    name: str
    input: str


class ReasoningIn(RequestModel):
    type: Literal["reasoning"]
    id: str  # required, as on the platform: a reasoning item is always one the model made
    summary: list[dict[str, Any]]
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None


class FileSearchCallIn(RequestModel):
    type: Literal["file_search_call"]
    id: str
    queries: list[str]
    status: Literal["in_progress", "searching", "completed", "incomplete", "failed"]
    results: list[dict[str, Any]] | None = None


class CodeInterpreterCallIn(RequestModel):
    type: Literal["code_interpreter_call"]
    id: str
    code: str | None = None
    container_id: str
    outputs: list[dict[str, Any]] | None = None
    status: Literal["in_progress", "completed", "incomplete", "interpreting", "failed"]


class McpListToolsIn(RequestModel):
    type: Literal["mcp_list_tools"]
    id: str
    server_label: str
    tools: list[dict[str, Any]]
    error: str | None = None


class McpCallIn(RequestModel):
    type: Literal["mcp_call"]
    id: str
    server_label: str
    name: str
    arguments: str
    output: str | None = None
    error: dict[str, Any] | str | None = None
    status: Literal["in_progress", "completed", "incomplete", "calling", "failed"] | None = None
    approval_request_id: str | None = None


class McpApprovalRequestIn(RequestModel):
    type: Literal["mcp_approval_request"]
    id: str
    server_label: str
    name: str
    arguments: str


class McpApprovalResponseIn(RequestModel):
    type: Literal["mcp_approval_response"]
    id: str | None = None
    approval_request_id: str
    approve: bool
    reason: str | None = None


class ItemReferenceIn(RequestModel):
    """An earlier item by id (``prompt.gather_state`` puts the item in its place)."""

    type: Literal["item_reference"] | None = None
    id: str


class CompactionIn(RequestModel):
    type: Literal["compaction"]
    id: str | None = None
    encrypted_content: str
    created_by: str | None = None


_MODELS: dict[str, type[BaseModel]] = {
    "compaction": CompactionIn,
    "item_reference": ItemReferenceIn,
    "custom_tool_call": CustomToolCallIn,
    "custom_tool_call_output": FunctionCallOutputIn,
    "code_interpreter_call": CodeInterpreterCallIn,
    "mcp_list_tools": McpListToolsIn,
    "mcp_call": McpCallIn,
    "mcp_approval_request": McpApprovalRequestIn,
    "mcp_approval_response": McpApprovalResponseIn,
    "message": MessageIn,
    "function_call": FunctionCallIn,
    "function_call_output": FunctionCallOutputIn,
    "reasoning": ReasoningIn,
    "file_search_call": FileSearchCallIn,
}


def loc_param(prefix: str, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the platform's ``param`` (``input[2].content``)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part.startswith("function-"):
            continue
        else:
            out += f".{part}"
    return out


def _validate(raw: Any, param: str) -> BaseModel:
    if not isinstance(raw, dict):
        raise InvalidRequestError(
            f"Invalid value for '{param}': expected an object.", param=param, code="invalid_value"
        )
    kind = raw.get("type") or ("message" if "role" in raw or "id" not in raw else "item_reference")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidRequestError(
            f"Invalid value for '{param}.type': item type {kind!r} is not supported.",
            param=f"{param}.type",
            code="invalid_value",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = loc_param(param, tuple(first["loc"]))
        if first["type"] == "missing":
            raise InvalidRequestError(
                f"Missing required parameter: '{where}'.",
                param=where,
                code="missing_required_parameter",
            ) from None
        raise InvalidRequestError(
            f"Invalid value for '{where}': {first['msg']}", param=where, code="invalid_value"
        ) from None


def _part(part: ContentPartIn, assistant: bool, param: str) -> Item:
    if part.type == "refusal":
        return {"type": "refusal", "refusal": part.refusal or ""}
    if part.type == "input_image" and not assistant:  # models that read text refuse it later
        return image_part(part.image_url, part.file_id, part.detail, param)
    if part.type not in TEXT_PARTS:
        raise InvalidRequestError(
            f"Content type '{part.type}' is not supported by this model; only text parts are.",
            param=f"{param}.type",
            code="unsupported_content_type",
        )
    if assistant:
        return {"type": "output_text", "text": part.text or "", "annotations": [], "logprobs": []}
    return {"type": "input_text", "text": part.text or ""}


def _message(item: MessageIn, param: str) -> Item:
    assistant = item.role == "assistant"
    parts = (
        [ContentPartIn(type="input_text", text=item.content)]
        if isinstance(item.content, str)
        else item.content
    )
    content = [_part(p, assistant, f"{param}.content[{i}]") for i, p in enumerate(parts)]
    return {
        "type": "message",
        "id": item.id or new_id("msg_"),
        "role": item.role,
        "status": "completed",
        "content": content,
    }


def normalize_item(raw: Any, param: str) -> Item:
    """Validate one client item and return its stored form (with an id); 400s name ``param``."""
    item = _validate(raw, param)
    if isinstance(item, MessageIn):
        return _message(item, param)
    if isinstance(item, FunctionCallIn):
        return {
            "type": "function_call",
            "id": item.id or new_id("fc_"),
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "status": "completed",
        }
    if isinstance(item, CustomToolCallIn):
        return {**item.model_dump(), "id": item.id or new_id("ctc_")}
    if isinstance(item, FunctionCallOutputIn):
        output = item.output
        if not isinstance(output, str):
            output = "".join(p.text or "" for p in output)
        return {
            "type": item.type,
            "id": item.id or new_id("fco_" if item.type == "function_call_output" else "ctco_"),
            "call_id": item.call_id,
            "output": output,
            "status": "completed",
        }
    if isinstance(item, CompactionIn):
        if compaction_summary(item.encrypted_content) is None:
            raise InvalidRequestError(
                f"The encrypted content of '{param}' could not be decoded: send compaction"
                " items back as this server returned them.",
                param=f"{param}.encrypted_content",
                code="invalid_encrypted_content",
            )
        return {**item.model_dump(exclude_none=True), "id": item.id or new_id("cmp_")}
    if isinstance(item, ItemReferenceIn):
        return {"type": "item_reference", "id": item.id}
    if isinstance(item, McpApprovalResponseIn):
        return {**item.model_dump(), "id": item.id or new_id("mcpa_")}
    if isinstance(
        item,
        FileSearchCallIn
        | McpListToolsIn
        | McpCallIn
        | McpApprovalRequestIn
        | CodeInterpreterCallIn,
    ):
        return item.model_dump()
    assert isinstance(item, ReasoningIn)
    out = item.model_dump(exclude_none=True)
    out["id"] = item.id or new_id("rs_")
    return out


def normalize_input(value: Any, param: str = "input") -> list[Item]:
    """The stored items for a request's ``input`` (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [normalize_item({"role": "user", "content": value}, param)]
    if not isinstance(value, list):
        raise InvalidRequestError(
            f"Invalid value for '{param}': expected a string or a list of items.",
            param=param,
            code="invalid_value",
        )
    return [normalize_item(raw, f"{param}[{i}]") for i, raw in enumerate(value)]


def item_text(item: Item) -> str:
    """The readable text of a message item's parts."""
    pieces = []
    for part in item.get("content") or []:
        if part.get("type") == "refusal":
            pieces.append(str(part.get("refusal", "")))
        else:
            pieces.append(str(part.get("text", "")))
    return "".join(pieces)


def searched_note(item: Item) -> str:
    """What a model is shown of an earlier ``file_search_call`` (the answer that followed it
    holds what was found)."""
    queries = "; ".join(str(q) for q in item.get("queries") or [])
    return f"(I searched the files for: {queries})"


def call_pair(
    call_id: str, name: str, payload: str, output: str, *, custom: bool = False
) -> list[Item]:
    """A tool call and its output as the model reads them: a function call with ``payload``
    as its arguments, or (``custom``) a custom tool call with ``payload`` as its input."""
    if custom:
        call: Item = {
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": name,
            "input": payload,
        }
    else:
        call = {"type": "function_call", "call_id": call_id, "name": name, "arguments": payload}
    kind = "custom_tool_call_output" if custom else "function_call_output"
    return [call, {"type": kind, "call_id": call_id, "output": output}]


def _hosted_pair(item: Item) -> list[Item]:
    """A server-run call (``mcp_call``, ``code_interpreter_call``) as the model reads it."""
    if item["type"] == "mcp_call":
        error = item.get("error")
        result = item.get("output") if not error else f"Error: {json.dumps(error)}"
        return call_pair(item["id"], item["name"], item["arguments"] or "{}", result or "")
    logs = [o.get("logs", "") for o in item.get("outputs") or [] if o.get("type") == "logs"]
    output = "\n".join(logs) or "(the code ran)"
    return call_pair(item["id"], "python", item.get("code") or "", output, custom=True)


def model_items(items: list[Item]) -> list[Item]:
    """The items as the model reads them: ``compacted``; a server-run call is a tool call and
    its output; MCP listings and approvals are not shown (the tools are offered as such)."""
    out: list[Item] = []
    for item in compacted(items):
        kind = item.get("type")
        if kind in ("mcp_call", "code_interpreter_call"):
            out += _hosted_pair(item)
        elif kind not in ("mcp_list_tools", "mcp_approval_request", "mcp_approval_response"):
            out.append(item)
    return out


def render_item(item: Item) -> ChatMessage | None:
    """A stored item as a chat message (None for items the model does not see, e.g. reasoning)."""
    kind = item.get("type")
    if kind == "message":
        role = "system" if item["role"] == "developer" else item["role"]
        return with_images(ChatMessage(role=role, content=item_text(item)), item)
    if kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        text = f"Calling function {item['name']} with arguments {item['arguments']}"
        return ChatMessage(role="assistant", content=text, extra={"tool_calls": [call]})
    if kind == "custom_tool_call":
        call = {
            "id": item["call_id"],
            "type": "custom",
            "custom": {"name": item["name"], "input": item["input"]},
        }
        text = f"Calling tool {item['name']} with input {item['input']}"
        return ChatMessage(role="assistant", content=text, extra={"tool_calls": [call]})
    if kind == "file_search_call":
        return ChatMessage(role="assistant", content=searched_note(item))
    if kind == "compaction":
        return ChatMessage(role="system", content=summary_message(item))
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item["output"]
        text = output if isinstance(output, str) else json.dumps(output)
        return ChatMessage(role="tool", content=text, extra={"tool_call_id": item["call_id"]})
    return None


def render_items(instructions: str | None, items: list[Item]) -> list[ChatMessage]:
    """Instructions first (as a system message), then every item the model can see."""
    messages = [ChatMessage(role="system", content=instructions)] if instructions else []
    for item in model_items(items):
        message = render_item(item)
        if message is not None:
            messages.append(message)
    return messages
