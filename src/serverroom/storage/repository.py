"""What every storage class shares: the database handle, inserts, lookups by id.

A resource's rows are read and written only by its repository (``ResponseRepository``,
``FileRepository`` ...), a ``Repository`` on the app's ``Database``. Rows a client reaches
belong to a project: ``owned`` finds one by id only within its project, so another project's
row is simply not there.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Result, select
from sqlalchemy.ext.asyncio import AsyncSession

from serverroom.storage.db import Base, Database

RowT = TypeVar("RowT")
MappedT = TypeVar("MappedT", bound=Base)


class Repository:
    """Reads and writes the rows of one resource in one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, row: RowT) -> RowT:
        """Insert ``row`` (in a transaction of its own)."""
        async with self.db.session() as session:
            session.add(row)
        return row

    async def found(self, table: type[MappedT], key: str, missing: Exception) -> MappedT:
        """The row of ``table`` with primary key ``key``; ``missing`` is raised if none is."""
        async with self.db.session() as session:
            row = await session.get(table, key)
        if row is None:
            raise missing
        return row

    async def found_owned(
        self, table: type[MappedT], row_id: str, project_id: str, missing: Exception
    ) -> MappedT:
        """``project_id``'s row of ``table`` with id ``row_id``; ``missing`` if it has none."""
        async with self.db.session() as session:
            return await owned_or(session, table, row_id, project_id, missing)


async def owned(
    session: AsyncSession,
    table: type[MappedT],
    row_id: str,
    project_id: str,
    *also: ColumnElement[bool],
) -> MappedT | None:
    """The row of ``table`` with id ``row_id`` if it is ``project_id``'s (and meets ``also``).

    ``table`` is a mapped class with ``id`` and ``project_id`` columns.
    """
    columns: Any = table
    query = select(table).where(columns.id == row_id, columns.project_id == project_id, *also)
    return (await session.execute(query)).scalar_one_or_none()


async def owned_or(
    session: AsyncSession, table: type[MappedT], row_id: str, project_id: str, missing: Exception
) -> MappedT:
    """``owned``, raising ``missing`` when there is no such row."""
    row = await owned(session, table, row_id, project_id)
    if row is None:
        raise missing
    return row


def changed(result: Result[Any]) -> bool:
    """Whether an UPDATE or DELETE matched a row."""
    return bool(getattr(result, "rowcount", 0))
