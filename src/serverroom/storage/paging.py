"""Cursor pages over a project's rows, ordered by their ``seq`` column.

The cursor is an object id (the platform's ``after``): the page starts after that row in the
requested order. An unknown cursor starts from the beginning, as the platform's lists do
(unless the caller names the error to raise instead, as conversation items do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row")


async def seq_page(
    session: AsyncSession,
    table: Any,
    query: Select[Row],
    project_id: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    within: Sequence[ColumnElement[bool]] = (),
    unknown: Exception | None = None,
    before: str | None = None,
) -> tuple[list[Row], bool]:
    """Up to ``limit`` rows of ``query`` after the cursor, and whether more follow.

    ``table`` is the mapped class: it has ``seq``, ``id`` and ``project_id`` columns.
    ``within``: more conditions the cursor's row must meet (e.g. being in one conversation);
    ``unknown``: raised when no such row has the cursor's id (instead of starting over);
    ``before``: the page that ends just before that row instead (the previous page), in the
    same order.
    """

    async def seq_of(ident: str) -> Any:
        cursor = await session.scalar(
            select(table.seq)
            .where(table.id == ident, table.project_id == project_id, *within)
            .limit(1)
        )
        if cursor is None and unknown is not None:
            raise unknown
        return cursor

    descending = order == "desc"
    backwards = bool(before) and not after
    if after and (cursor := await seq_of(after)) is not None:
        query = query.where(table.seq < cursor if descending else table.seq > cursor)
    if backwards and before and (cursor := await seq_of(before)) is not None:
        query = query.where(table.seq > cursor if descending else table.seq < cursor)
    newest_first = descending != backwards
    query = query.order_by(table.seq.desc() if newest_first else table.seq.asc())
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    page = rows[:limit]
    return (page[::-1] if backwards else page), len(rows) > limit
