"""Persistence of projects and API keys (project and admin), on the shared ``Database``.

Everything here is a small async function over one session; callers own caching.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from serverroom.accounts import keys
from serverroom.errors import ConflictError, NotFoundError
from serverroom.ids import new_id
from serverroom.storage.repository import Repository
from serverroom.storage.tables.accounts import ApiKeyRow, ProjectRow, UsageRow


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    created_at: int
    archived_at: int | None
    pinned_tier: str | None
    spend_usd: float
    spend_limit_usd: float | None = None  # a month's most, in dollars (None: no limit)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    project_id: str | None
    is_admin: bool
    name: str
    redacted_value: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    value: str


def _project(row: ProjectRow) -> ProjectInfo:
    return ProjectInfo(
        row.id,
        row.name,
        row.created_at,
        row.archived_at,
        row.pinned_tier,
        float(row.spend_usd or 0.0),
        row.monthly_spend_limit_usd,
    )


def _key(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        row.id,
        row.project_id,
        bool(row.is_admin),
        row.name,
        row.redacted_value,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def _no_project(project_id: str) -> NotFoundError:
    return NotFoundError(f"No project found with id '{project_id}'.")


class AccountsRepository(Repository):
    """CRUD for projects and keys."""

    # -- projects -----------------------------------------------------------------------------

    async def create_project(self, name: str) -> ProjectInfo:
        async with self.db.session() as s:
            existing = await s.scalar(select(ProjectRow).where(ProjectRow.name == name))
            if existing is not None:
                raise ConflictError(f"A project named '{name}' already exists.", param="name")
            row = ProjectRow(
                id=new_id("proj_", 12), name=name, created_at=int(time.time()), spend_usd=0.0
            )
            s.add(row)
        return _project(row)

    async def list_projects(self) -> list[ProjectInfo]:
        async with self.db.session() as s:
            query = select(ProjectRow).order_by(ProjectRow.created_at, ProjectRow.id)
            rows = await s.scalars(query)
            return [_project(r) for r in rows]

    async def get_project(self, project_id: str) -> ProjectInfo:
        return _project(await self.found(ProjectRow, project_id, _no_project(project_id)))

    async def find_project(self, id_or_name: str) -> ProjectInfo:
        """A project by id or by name."""
        async with self.db.session() as s:
            row = await s.get(ProjectRow, id_or_name)
            if row is None:
                row = await s.scalar(select(ProjectRow).where(ProjectRow.name == id_or_name))
            if row is None:
                raise NotFoundError(f"No project found with id or name '{id_or_name}'.")
            return _project(row)

    async def pin_tier(self, project_id: str, tier: str | None) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(ProjectRow).where(ProjectRow.id == project_id).values(pinned_tier=tier)
            )

    async def archive_project(self, project_id: str) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(ProjectRow)
                .where(ProjectRow.id == project_id, ProjectRow.archived_at.is_(None))
                .values(archived_at=int(time.time()))
            )

    async def set_spend_limit(self, project_id: str, monthly_usd: float | None) -> None:
        async with self.db.session() as s:
            await s.execute(
                update(ProjectRow)
                .where(ProjectRow.id == project_id)
                .values(monthly_spend_limit_usd=monthly_usd)
            )

    async def spend_since(self, project_id: str, since: int) -> float:
        """The project's spend in dollars from ``since`` (epoch seconds) on, by its ledger."""
        async with self.db.session() as s:
            total = await s.scalar(
                select(func.coalesce(func.sum(UsageRow.cost_usd), 0.0)).where(
                    UsageRow.project_id == project_id, UsageRow.created_at >= since
                )
            )
        return float(total or 0.0)

    # -- keys ---------------------------------------------------------------------------------

    async def create_key(
        self, project_id: str | None, name: str = "", admin: bool = False
    ) -> CreatedKey:
        new = keys.generate(admin=admin)
        row = await self.store_key(new, project_id=project_id, name=name, admin=admin)
        return CreatedKey(info=row, value=new.value)

    async def store_key(
        self, new: keys.NewKey, *, project_id: str | None, name: str, admin: bool
    ) -> KeyInfo:
        async with self.db.session() as s:
            if project_id is not None and await s.get(ProjectRow, project_id) is None:
                raise _no_project(project_id)
            row = ApiKeyRow(
                id=new_id("key_", 12),
                project_id=project_id,
                is_admin=admin,
                name=name,
                key_hash=new.key_hash,
                redacted_value=new.redacted,
                created_at=int(time.time()),
            )
            s.add(row)
        return _key(row)

    async def ensure_admin_key(self, value: str, name: str = "bootstrap") -> KeyInfo:
        """Store the bootstrap admin key unless its hash is already known."""
        digest = keys.hash_key(value)
        async with self.db.session() as s:
            row = await s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is not None:
                return _key(row)
        new = keys.NewKey(value=value, key_hash=digest, redacted=keys.redact(value))
        return await self.store_key(new, project_id=None, name=name, admin=True)

    async def list_keys(self, project_id: str | None = None) -> list[KeyInfo]:
        async with self.db.session() as s:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            if project_id is not None:
                query = query.where(ApiKeyRow.project_id == project_id)
            return [_key(r) for r in await s.scalars(query)]

    async def get_key(self, key_id: str) -> KeyInfo:
        missing = NotFoundError(f"No API key found with id '{key_id}'.")
        return _key(await self.found(ApiKeyRow, key_id, missing))

    async def lookup(self, value: str) -> KeyInfo | None:
        """The key whose hash matches ``value`` (revoked or not), or None."""
        async with self.db.session() as s:
            row = await s.scalar(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == keys.hash_key(value))
            )
            return _key(row) if row is not None else None

    async def revoke_key(self, key_id: str) -> KeyInfo:
        async with self.db.session() as s:
            row = await s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"No API key found with id '{key_id}'.")
            if row.revoked_at is None:
                row.revoked_at = int(time.time())
            return _key(row)

    async def touch(self, key_id: str, at: int) -> None:
        """Record when a key was last used."""
        async with self.db.session() as s:
            await s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at))

    async def any_key_exists(self) -> bool:
        async with self.db.session() as s:
            return await s.scalar(select(ApiKeyRow.id).limit(1)) is not None
