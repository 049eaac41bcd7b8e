"""The platform's list envelope and cursor pages over in-memory lists of objects."""

from __future__ import annotations

from typing import Any

from serverroom.errors import NotFoundError

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


def page_of(
    items: list[Item], after: str | None, limit: int, order: str
) -> tuple[list[Item], bool]:
    """A cursor page over a list of objects with ids (``after`` is an object id)."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise NotFoundError(f"Item with id '{after}' not found.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    return ordered[:limit], len(ordered) > limit
