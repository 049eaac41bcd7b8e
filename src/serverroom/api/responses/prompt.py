"""The prompt of a response: prior state (chain or conversation) + new input, rendered to tokens.

``render_prompt`` is the one place a response's items become prompt text; tool support extends
it (e.g. passing ``tools`` to the chat template).
"""

from __future__ import annotations

from dataclasses import dataclass

from serverroom.api.common import check_context, check_count
from serverroom.api.items import Item, normalize_input, render_items
from serverroom.api.responses.repository import ResponseRepository
from serverroom.api.responses.schemas import ResponseContextFields
from serverroom.constraints import ToolSetup, render_tool_messages
from serverroom.context import AppContext
from serverroom.engine.base import Engine
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.principal import Principal
from serverroom.storage.conversations import ConversationRepository


@dataclass
class PromptState:
    """The items a response sees: earlier ones (``history``) and this turn's (``new``)."""

    history: list[Item]
    new: list[Item]


async def gather_state(
    ctx: AppContext,
    request: ResponseContextFields,
    principal: Principal,
    *,
    require_input: bool = True,
) -> PromptState:
    """Validate the state parameters and load the earlier items they point to (counting
    input tokens needs no input: instructions and tools alone are counted)."""
    limits = ctx.settings.requests
    if isinstance(request.input, list):
        check_count(len(request.input), limits.max_items, param="input", what="input items")
    check_count(len(request.tools or []), limits.max_tools, param="tools", what="tools")
    conversation_id = request.conversation_id()
    if request.previous_response_id is not None and conversation_id is not None:
        raise InvalidRequestError(
            "Mutually exclusive parameters: Ensure you are only providing one of:"
            " 'previous_response_id' or 'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    new = normalize_input(request.input)
    history: list[Item] = []
    if request.previous_response_id is not None:
        repo = ResponseRepository(ctx.db)
        history = await repo.chain_items(principal.project_id, request.previous_response_id)
    elif conversation_id is not None:
        conversations = ConversationRepository(ctx.db)
        history = await conversations.all_items(principal.project_id, conversation_id)
    new = await _resolve_references(ctx, principal.project_id, new, history)
    if require_input and not new and not history:
        raise InvalidRequestError(
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    return PromptState(history=history, new=new)


async def _resolve_references(
    ctx: AppContext, project_id: str, new: list[Item], history: list[Item]
) -> list[Item]:
    """``new`` with each ``item_reference`` replaced by the item it names: one of the earlier
    items, else one of the project's stored responses or conversations (else a 404)."""
    if not any(item["type"] == "item_reference" for item in new):
        return new
    known = {item.get("id"): item for item in history}
    responses, conversations = ResponseRepository(ctx.db), ConversationRepository(ctx.db)
    out = []
    for item in new:
        if item["type"] == "item_reference":
            found = (
                known.get(item["id"])
                or await responses.find_item(project_id, item["id"])
                or await conversations.find_item(project_id, item["id"])
            )
            if found is None or found.get("type") == "item_reference":
                raise NotFoundError(
                    f"Item with id '{item['id']}' not found. Items are not persisted when"
                    " `store` is set to false.",
                    param="input",
                )
            item = dict(found)
        out.append(item)
    return out


def render_prompt(
    engine: Engine, instructions: str | None, items: list[Item], tools: ToolSetup | None = None
) -> list[int]:
    """Token ids of the chat-template prompt for ``instructions`` + ``items`` (+ ``tools``)."""
    return engine.tokenize_chat(render_tool_messages(render_items(instructions, items), tools))


def _fits(engine: Engine, prompt: list[int], max_output: int | None) -> bool:
    limit = engine.context_length
    return len(prompt) < limit and (max_output is None or len(prompt) + max_output <= limit)


def fit_prompt(
    engine: Engine,
    instructions: str | None,
    state: PromptState,
    *,
    max_output: int | None,
    truncation: str | None,
    tools: ToolSetup | None = None,
    model_cap: int | None = None,
    default_output: int | None = None,
    rendered: list[int] | None = None,
) -> tuple[list[int], int]:
    """The prompt and output budget; ``truncation: auto`` drops the oldest items to fit
    (``rendered``: the whole state's prompt, when the caller has rendered it already)."""
    items = state.history + state.new
    prompt = rendered if rendered is not None else render_prompt(engine, instructions, items, tools)
    if truncation == "auto" and len(items) > 1 and not _fits(engine, prompt, max_output):
        # The fewest oldest items to drop, by bisection (a long history is rendered and
        # tokenized O(log n) times, not once per dropped item); keeps at least the last item.
        low, high = 1, len(items) - 1
        prompt = render_prompt(engine, instructions, items[high:], tools)
        while low < high:
            middle = (low + high) // 2
            candidate = render_prompt(engine, instructions, items[middle:], tools)
            if _fits(engine, candidate, max_output):
                high, prompt = middle, candidate
            else:
                low = middle + 1
    budget = check_context(
        engine,
        len(prompt),
        max_output,
        param="input",
        what="input",
        limit_param="max_output_tokens",
        model_cap=model_cap,
        default=default_output,
    )
    return prompt, budget
