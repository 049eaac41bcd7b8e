"""The Responses API's ``file_search`` tool: the model searches the request's vector stores.

The tool is offered to the model as a function named ``file_search`` that takes the search
queries, under the same grammar-forced tool-call machinery as function tools (``tool_choice``
``{"type": "file_search"}`` forces it). When the model calls it, the server runs the queries,
and the user's latest message as one more, over the stores (``vector_stores.service``),
records a ``file_search_call`` item, gives the results to the model as the call's output, and
generates again without the tool, so the answer that follows is grounded in them; its text
cites the files it was given (``file_citation`` annotations at the end of the text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from serverroom.api.items import Item, call_pair, item_text
from serverroom.api.vector_stores.schemas import SearchRequest
from serverroom.api.vector_stores.search import check_filter
from serverroom.api.vector_stores.service import VectorStores, usable
from serverroom.constraints import ToolSpec
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError

NAME = "file_search"
RESULTS_INCLUDE = "file_search_call.results"
MAX_STORES = 2  # the platform's limit of vector stores per file_search tool
CITED = 3  # files cited in the answer, at most
CALL_USD = 2.50 / 1000  # the platform's price of one file_search call
PASSAGE_CHARS = 1200  # of each result shown to the model

SPEC = ToolSpec(
    name=NAME,
    description="Search the user's uploaded files for passages that answer the question."
    " Call it with one to three short search queries.",
    parameters={
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 100},
                "minItems": 1,
                "maxItems": 3,
            }
        },
        "required": ["queries"],
        "additionalProperties": False,
    },
    strict=False,  # checked as a platform strict schema it could not bound its strings
)


@dataclass(frozen=True)
class FileSearch:
    """A request's ``file_search`` tool, checked."""

    vector_store_ids: list[str]
    max_num_results: int
    filters: dict[str, Any] | None
    score_threshold: float | None


def parse_tool(tools: list[dict[str, Any]] | None) -> FileSearch | None:
    """The request's ``file_search`` tool (400 if malformed or given twice)."""
    found = [
        (i, t) for i, t in enumerate(tools or []) if isinstance(t, dict) and t.get("type") == NAME
    ]
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequestError("Only one file_search tool is allowed.", param="tools")
    index, tool = found[0]
    param = f"tools[{index}]"
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InvalidRequestError(
            "file_search needs 'vector_store_ids', a list of vector store ids.",
            param=f"{param}.vector_store_ids",
        )
    if len(ids) > MAX_STORES:
        raise InvalidRequestError(
            f"file_search takes at most {MAX_STORES} vector stores.",
            param=f"{param}.vector_store_ids",
        )
    limit = tool.get("max_num_results", 10)
    if not isinstance(limit, int) or not 1 <= limit <= 50:
        raise InvalidRequestError(
            "max_num_results must be an integer from 1 to 50.", param=f"{param}.max_num_results"
        )
    filters = tool.get("filters")
    if filters is not None:
        check_filter(filters, f"{param}.filters")
    ranking = tool.get("ranking_options") or {}
    threshold = ranking.get("score_threshold") if isinstance(ranking, dict) else None
    return FileSearch(list(ids), limit, filters, threshold)


async def check_stores(ctx: AppContext, project_id: str, tool: FileSearch) -> None:
    """404 unless every store is the project's own (before any work starts)."""
    service = VectorStores(ctx)
    for store_id in tool.vector_store_ids:
        usable(await service.repo.store(project_id, store_id))


def with_question(queries: list[str], items: list[Item]) -> list[str]:
    """The model's queries and the user's latest message, which is searched too: a small
    model's query may miss what was asked (the item lists every query that ran)."""
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            question = item_text(item).strip()[:500]
            if question and question not in queries:
                return [*queries, question]
            break
    return queries


def queries_of(arguments: str) -> list[str]:
    """The model's queries (its arguments are grammar-forced, so this only guards)."""
    try:
        queries = json.loads(arguments).get("queries") or []
    except (ValueError, AttributeError):
        queries = []
    return [str(q) for q in queries if str(q).strip()][:3] or [arguments[:200]]


async def search(ctx: AppContext, tool: FileSearch, queries: list[str]) -> list[dict[str, Any]]:
    """The results of the queries over the tool's stores, best first, one entry per chunk."""
    service = VectorStores(ctx)
    body = SearchRequest(
        query=queries,
        filters=tool.filters,
        max_num_results=tool.max_num_results,
        ranking_options={"score_threshold": tool.score_threshold}
        if tool.score_threshold is not None
        else None,
    )
    hits: list[dict[str, Any]] = []
    for store_id in tool.vector_store_ids:
        hits += await service.ranked(store_id, " ".join(queries), body)
    hits.sort(key=lambda h: -h["score"])
    return [
        {
            "file_id": h["file_id"],
            "filename": h["filename"],
            "score": h["score"],
            "text": h["content"][0]["text"],
            "attributes": h["attributes"],
        }
        for h in hits[: tool.max_num_results]
    ]


def followup_items(call_id: str, queries: list[str], results: list[dict[str, Any]]) -> list[Item]:
    """What the model reads before it answers: its call, and the results as the call's output."""
    arguments = json.dumps({"queries": queries})
    if results:
        passages = "\n\n".join(
            f"[{i + 1}] {r['filename']}:\n{r['text'][:PASSAGE_CHARS]}"
            for i, r in enumerate(results)
        )
        output = f"Search results:\n\n{passages}\n\nAnswer the question using these results."
    else:
        output = "The search found nothing in the files. Say so."
    return call_pair(call_id, NAME, arguments, output)


def citations(results: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """``file_citation`` annotations for the files the answer was given, best first."""
    out: list[dict[str, Any]] = []
    for result in results:
        if all(c["file_id"] != result["file_id"] for c in out) and len(out) < CITED:
            out.append(
                {
                    "type": "file_citation",
                    "file_id": result["file_id"],
                    "filename": result["filename"],
                    "index": index,
                }
            )
    return out
