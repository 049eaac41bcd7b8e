"""The Responses API's ``code_interpreter`` tool: the model writes Python, the server runs it.

The tool is offered to the model as a custom tool named ``python`` whose input is the code as
plain text (no JSON escaping for a small model to get wrong). Its container is the request's
``container`` id, or with ``{"type": "auto"}`` the one an earlier call of the chain used, else
a new one holding the tool's ``file_ids`` (see ``api.containers``). A call becomes a
``code_interpreter_call`` item; the code runs in the sandbox (``hosted.sandbox``) over the
container's files, files it writes become container files (cited in the answer), and its
output goes back to the model for the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serverroom.api.containers.service import Containers
from serverroom.api.items import Item, call_pair
from serverroom.constraints import ToolSpec
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.hosted.sandbox import DATA, Limits, RunResult, run_python
from serverroom.settings import ToolSettings

NAME = "python"
OUTPUTS_INCLUDE = "code_interpreter_call.outputs"
CONTAINER_USD = 0.03  # the platform's price of a code interpreter container session
SPEC = ToolSpec(
    name=NAME,
    description="Run Python 3 code and see what it prints. Files are in the working"
    f" directory {DATA}; files the code writes there are given to the user. Use print() to"
    " show results.",
    custom={"type": "text"},
)


@dataclass(frozen=True)
class CodeInterpreter:
    """A request's ``code_interpreter`` tool, checked."""

    container_id: str | None  # an explicit container, else auto
    file_ids: list[str]


def parse_tool(tools: list[dict[str, Any]] | None) -> CodeInterpreter | None:
    found = [
        (i, t)
        for i, t in enumerate(tools or [])
        if isinstance(t, dict) and t.get("type") == "code_interpreter"
    ]
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequestError("Only one code_interpreter tool is allowed.", param="tools")
    index, tool = found[0]
    container = tool.get("container")
    if isinstance(container, str) and container:
        return CodeInterpreter(container, [])
    if isinstance(container, dict) and container.get("type") == "auto":
        ids = container.get("file_ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidRequestError(
                "'file_ids' must be a list of file ids.",
                param=f"tools[{index}].container.file_ids",
            )
        return CodeInterpreter(None, list(ids))
    raise InvalidRequestError(
        'code_interpreter needs \'container\': a container id or {"type": "auto"}.',
        param=f"tools[{index}].container",
        code="missing_required_parameter" if container is None else "invalid_value",
    )


async def container_for(
    ctx: AppContext, project_id: str, tool: CodeInterpreter, context: list[Item]
) -> tuple[str, bool]:
    """The container the calls run in, and whether it was made now (billed)."""
    containers = Containers(ctx)
    if tool.container_id is not None:
        await containers.usable(project_id, tool.container_id)
        return tool.container_id, False
    for item in reversed(context):
        if item.get("type") == "code_interpreter_call" and item.get("container_id"):
            try:
                await containers.usable(project_id, item["container_id"])
                return str(item["container_id"]), False
            except (InvalidRequestError, NotFoundError):
                break  # expired or deleted: a new one
    made = await containers.create_auto(project_id, tool.file_ids)
    return str(made["id"]), True


def limits(settings: ToolSettings) -> Limits:
    return Limits(
        wall_seconds=settings.code_timeout_seconds,
        cpu_seconds=settings.code_cpu_seconds,
        memory_mb=settings.code_memory_mb,
    )


async def interpret(
    ctx: AppContext, project_id: str, item: Item
) -> tuple[RunResult, list[dict[str, Any]]]:
    """Run the item's code in its container; the run, and the container files it wrote."""
    containers = Containers(ctx)
    container_id = item["container_id"]
    files = await containers.snapshot(project_id, container_id)
    settings = ctx.settings.tools
    result = await run_python(item["code"] or "", files, limits(settings), settings.sandbox)
    saved = await containers.save_outputs(project_id, container_id, result.files)
    return result, saved


def report(result: RunResult, saved: list[dict[str, Any]]) -> str:
    """What the model reads of a run."""
    parts = [result.logs.strip() or "(no output)"]
    if result.timed_out:
        parts.append("The code was stopped: it ran past the time limit.")
    elif result.exit_code not in (0, None):
        parts.append(f"The code exited with status {result.exit_code}.")
    if saved:
        parts.append("Files written: " + ", ".join(f["path"] for f in saved))
    return "\n".join(parts)


def followup_items(item: Item, text: str) -> list[Item]:
    """The call and its output as the model reads them in the next round."""
    return call_pair(item["id"], NAME, item["code"], text, custom=True)


def citations(saved: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """``container_file_citation`` annotations for the files the code wrote."""
    return [
        {
            "type": "container_file_citation",
            "container_id": f["container_id"],
            "file_id": f["id"],
            "filename": f["path"].rsplit("/", 1)[-1],
            "start_index": index,
            "end_index": index,
        }
        for f in saved
    ]
