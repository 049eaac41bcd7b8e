"""The Responses API's ``mcp`` tool: a remote MCP server's tools, run by the server.

A request's ``mcp`` tools are checked (``parse_tools``: the URL must be on the operator's
allow-list), and each server's tools are listed once per chain: an ``mcp_list_tools`` item
already in the context is reused, else the server is asked and a new item leads the output
(a server that cannot list its tools is a 424, as on the platform). The tools are offered to
the model as functions under the same grammar-forced call machinery as function tools. A call
becomes an ``mcp_call`` item that the server runs, feeding the output (or ``error``) back for
the next round; a tool that needs approval becomes an ``mcp_approval_request`` that ends the
response, and the client's ``mcp_approval_response`` in the next request runs or declines it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from serverroom.api.items import Item, call_pair
from serverroom.constraints import ToolSpec
from serverroom.errors import ExternalConnectorError, InvalidRequestError
from serverroom.hosted.mcp_client import McpFailure, McpServer, call_tool, check_url, list_tools
from serverroom.ids import new_id
from serverroom.settings import ToolSettings

DECLINED = "The user declined to run this tool call."


@dataclass(frozen=True)
class McpTool:
    """One request ``mcp`` tool, checked."""

    label: str
    server: McpServer
    allowed: list[str] | None  # tool names offered (None: all)
    allowed_read_only: bool | None
    approval: str | dict[str, Any]

    def offers(self, tool: Item) -> bool:
        if self.allowed is not None and tool["name"] not in self.allowed:
            return False
        return self.allowed_read_only is None or _read_only(tool) == self.allowed_read_only

    def needs_approval(self, tool: Item) -> bool:
        """Whether a call to ``tool`` waits for the client (the platform's default: yes)."""
        if isinstance(self.approval, str):
            return self.approval != "never"
        return not _matches(self.approval.get("never"), tool)


def _read_only(tool: Item) -> bool:
    return bool((tool.get("annotations") or {}).get("readOnlyHint"))


def _matches(rule: Any, tool: Item) -> bool:
    if not isinstance(rule, dict):
        return False
    names = rule.get("tool_names")
    if names is not None and tool["name"] not in names:
        return False
    read_only = rule.get("read_only")
    return read_only is None or _read_only(tool) == read_only


def _tool(index: int, raw: dict[str, Any], settings: ToolSettings) -> McpTool:
    param = f"tools[{index}]"
    label = raw.get("server_label")
    if not isinstance(label, str) or not label:
        raise InvalidRequestError(
            "Missing required parameter: 'server_label'.",
            param=f"{param}.server_label",
            code="missing_required_parameter",
        )
    url = raw.get("server_url")
    if not isinstance(url, str):
        what = (
            "connector_id" if "connector_id" in raw else "tunnel_id" if "tunnel_id" in raw else ""
        )
        raise InvalidRequestError(
            f"'{what}' is not supported by this server; give 'server_url'."
            if what
            else "Missing required parameter: 'server_url'.",
            param=f"{param}.{what or 'server_url'}",
            code="unsupported_value" if what else "missing_required_parameter",
        )
    check_url(url, settings.mcp_allowed_hosts, f"{param}.server_url")
    headers = dict(raw.get("headers") or {})
    if raw.get("authorization"):
        headers["Authorization"] = f"Bearer {raw['authorization']}"
    allowed = raw.get("allowed_tools")
    names = allowed.get("tool_names") if isinstance(allowed, dict) else allowed
    approval = raw.get("require_approval") or "always"
    if not (approval in ("always", "never") or isinstance(approval, dict)):
        raise InvalidRequestError(
            "Invalid value for 'require_approval': expected 'always', 'never' or a filter.",
            param=f"{param}.require_approval",
            code="invalid_value",
        )
    return McpTool(
        label=label,
        server=McpServer(url, headers, settings.mcp_timeout_seconds),
        allowed=list(names) if names is not None else None,
        allowed_read_only=allowed.get("read_only") if isinstance(allowed, dict) else None,
        approval=approval,
    )


def parse_tools(tools: list[dict[str, Any]] | None, settings: ToolSettings) -> list[McpTool]:
    """The request's ``mcp`` tools (400 if malformed, a label repeats, or a URL is not
    allowed)."""
    out: list[McpTool] = []
    for index, raw in enumerate(tools or []):
        if isinstance(raw, dict) and raw.get("type") == "mcp":
            tool = _tool(index, raw, settings)
            if any(t.label == tool.label for t in out):
                raise InvalidRequestError(
                    f"Duplicate server_label {tool.label!r}.", param=f"tools[{index}].server_label"
                )
            out.append(tool)
    return out


@dataclass
class McpTools:
    """The request's MCP servers with their tools, and the names the model calls them by."""

    servers: list[McpTool]
    listings: dict[str, list[Item]] = field(default_factory=dict)  # label -> offered tools
    new_items: list[Item] = field(default_factory=list)  # mcp_list_tools made now (output)
    names: dict[str, tuple[McpTool, Item]] = field(default_factory=dict)  # model name -> tool
    offered: list[ToolSpec] = field(default_factory=list)  # the tools as the model sees them

    def specs(self, taken: set[str]) -> list[ToolSpec]:
        """The tools as functions (kept as ``offered``); a name already used (a function
        tool, another server) gets its server's label in front."""
        out: list[ToolSpec] = []
        self.names = {}
        for server in self.servers:
            for tool in self.listings.get(server.label, []):
                name = tool["name"]
                if name in taken or name in self.names:
                    name = f"{server.label}__{name}"
                self.names[name] = (server, tool)
                schema = tool.get("input_schema") or None
                out.append(ToolSpec(name, tool.get("description"), schema, server=server.label))
        self.offered = out
        return out

    def call_item(self, model_name: str) -> Item:
        """The item a call opens: an ``mcp_call``, or an ``mcp_approval_request``."""
        server, tool = self.names[model_name]
        if server.needs_approval(tool):
            return {
                "type": "mcp_approval_request",
                "id": new_id("mcpr_"),
                "server_label": server.label,
                "name": tool["name"],
                "arguments": "",
            }
        return _mcp_call(server.label, tool["name"], "", None)

    def server(self, label: str) -> McpTool | None:
        return next((s for s in self.servers if s.label == label), None)


async def prepare(servers: list[McpTool], context: list[Item]) -> McpTools:
    """Each server's tools: from the latest good ``mcp_list_tools`` of that label in the
    context, else listed now (424 if the server cannot list them)."""
    tools = McpTools(servers)
    for server in servers:
        known = [
            i
            for i in context
            if i.get("type") == "mcp_list_tools"
            and i.get("server_label") == server.label
            and not i.get("error")
        ]
        if known:
            listed = known[-1]["tools"]
        else:
            try:
                listed = await list_tools(server.server)
            except McpFailure as exc:
                raise ExternalConnectorError(
                    f"Error retrieving tool list from MCP server: {server.label!r}."
                    f" {exc.error.get('message', '')}".strip(),
                    param="tools",
                ) from None
            listed = [t for t in listed if server.offers(t)]  # the item shows what is offered
            tools.new_items.append(
                {
                    "type": "mcp_list_tools",
                    "id": new_id("mcpl_"),
                    "server_label": server.label,
                    "tools": listed,
                    "error": None,
                }
            )
        tools.listings[server.label] = [t for t in listed if server.offers(t)]
    return tools


async def run_call(tools: McpTools, item: Item) -> None:
    """Run an ``mcp_call`` item's call: its ``output``, or its ``error`` and ``failed``."""
    server = tools.server(item["server_label"])
    if server is None:
        item.update(
            status="failed",
            error={
                "type": "http_error",
                "code": 400,
                "message": "The MCP server is not in the request.",
            },
        )
        return
    try:
        arguments = json.loads(item["arguments"] or "{}")
        if not isinstance(arguments, dict):
            raise ValueError("the arguments are not a JSON object")
    except ValueError as exc:
        item.update(
            status="failed",
            error={
                "type": "mcp_protocol_error",
                "code": -32602,
                "message": f"Invalid arguments: {exc}",
            },
        )
        return
    try:
        item["output"] = await call_tool(server.server, item["name"], arguments)
        item["status"] = "completed"
    except McpFailure as exc:
        item.update(status="failed", error=exc.error)


async def approved_calls(
    tools: McpTools, context: list[Item], new: list[Item]
) -> tuple[list[Item], list[Item]]:
    """The ``mcp_approval_response`` items of this turn answered: approved calls run now, as
    ``mcp_call`` output items; declined ones are told to the model (prompt-only items)."""
    requests = {i["id"]: i for i in context + new if i.get("type") == "mcp_approval_request"}
    done = {i.get("approval_request_id") for i in context if i.get("type") == "mcp_call"}
    output: list[Item] = []
    told: list[Item] = []
    for answer in (i for i in new if i.get("type") == "mcp_approval_response"):
        asked = requests.get(answer["approval_request_id"])
        if asked is None:
            raise InvalidRequestError(
                f"No mcp_approval_request with id {answer['approval_request_id']!r} in this"
                " conversation.",
                param="input",
                code="invalid_value",
            )
        if asked["id"] in done:
            continue
        if not answer["approve"]:
            told += declined(asked)
            continue
        call = _mcp_call(asked["server_label"], asked["name"], asked["arguments"], asked["id"])
        await run_call(tools, call)
        output.append(call)
    return output, told


def _mcp_call(label: str, name: str, arguments: str, approval_id: str | None) -> Item:
    return {
        "type": "mcp_call",
        "id": new_id("mcp_"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "status": "in_progress",
        "output": None,
        "error": None,
        "approval_request_id": approval_id,
    }


def declined(asked: Item) -> list[Item]:
    """What the model reads of a call the user declined."""
    return call_pair(asked["id"], asked["name"], asked["arguments"], DECLINED)
