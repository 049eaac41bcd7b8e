"""The platform's list envelope, its cursor query parameters, and cursor pages over
in-memory lists of objects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query

from serverroom.errors import NotFoundError

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PageQuery:
    """A list request's cursor: ``after`` (an object id), ``limit`` (1-100) and ``order``."""

    after: str | None
    limit: int
    order: Order


def _page_query(default: Order) -> Callable[..., Awaitable[PageQuery]]:
    async def read(
        after: str | None = None,
        limit: int = Query(20, ge=1, le=100),
        order: Order = default,
    ) -> PageQuery:
        return PageQuery(after, limit, order)

    return read


# The platform's list parameters, oldest first or newest first by default.
OldestFirst = Annotated[PageQuery, Depends(_page_query("asc"))]
NewestFirst = Annotated[PageQuery, Depends(_page_query("desc"))]

Item = dict[str, Any]


def list_body(data: list[Item], has_more: bool, *, null_ids: bool = True) -> dict[str, Any]:
    """The list envelope. ``first_id`` / ``last_id`` are null on an empty page, or left out
    with ``null_ids=False`` (lists that type them as strings, such as files)."""
    if not data and not null_ids:
        return {"object": "list", "data": data, "has_more": has_more}
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def deleted_body(ident: str, object_type: str) -> dict[str, Any]:
    """What a ``DELETE`` answers: the object's id and type, and ``deleted: true``."""
    return {"id": ident, "object": object_type, "deleted": True}


def page_of(items: list[Item], page: PageQuery) -> tuple[list[Item], bool]:
    """A cursor page over a list of objects with ids (``page.after`` is an object id)."""
    ordered = list(reversed(items)) if page.order == "desc" else list(items)
    if page.after is not None:
        ids = [item.get("id") for item in ordered]
        if page.after not in ids:
            raise NotFoundError(f"Item with id '{page.after}' not found.", param="after")
        ordered = ordered[ids.index(page.after) + 1 :]
    return ordered[: page.limit], len(ordered) > page.limit
