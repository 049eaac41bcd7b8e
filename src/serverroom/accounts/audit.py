"""The audit log: every change an admin makes to the organization (a project created or
changed, an API key created or revoked, a tier pinned, a spend limit set), who made it and
when, listed newest first in the platform's ``/v1/organization/audit_logs`` shape.

The actor is an ``api_key`` (the admin key of an API call) or a ``session``: the dashboard
(its user is the admin key that signed in, with the browser's address) or the CLI (its user is
``cli:<login>``); a change made while authentication is open is a session with no user."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from serverroom.errors import check_choices
from serverroom.ids import new_id
from serverroom.principal import Principal
from serverroom.storage.db import Database
from serverroom.storage.tables.accounts import AuditLogRow, ProjectRow

EVENT_TYPES = (
    "api_key.created",
    "api_key.deleted",
    "project.created",
    "project.updated",
    "project.archived",
)
_RANGE = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        event_type: str,
        actor: Principal,
        *,
        project_id: str | None,
        resource_id: str | None,
        data: dict[str, Any] | None = None,
    ) -> None:
        row = AuditLogRow(
            id=new_id("audit_log-"),
            type=event_type,
            effective_at=int(time.time()),
            actor_key_id=actor.key_id,
            actor_user=actor.session_user,
            actor_ip=actor.session_ip,
            project_id=project_id,
            resource_id=resource_id,
            data=data or {},
        )
        async with self.db.session() as session:
            session.add(row)

    async def page(
        self,
        *,
        limit: int,
        after: str | None,
        event_types: list[str],
        project_ids: list[str],
        resource_ids: list[str],
        effective_at: dict[str, int],
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of entries, newest first, and whether more follow."""
        check_choices(event_types, EVENT_TYPES, "event_types")
        query = select(AuditLogRow).order_by(AuditLogRow.seq.desc()).limit(limit + 1)
        if event_types:
            query = query.where(AuditLogRow.type.in_(event_types))
        if project_ids:
            query = query.where(AuditLogRow.project_id.in_(project_ids))
        if resource_ids:
            query = query.where(AuditLogRow.resource_id.in_(resource_ids))
        for op, value in effective_at.items():
            query = query.where(getattr(AuditLogRow.effective_at, _RANGE[op])(value))
        async with self.db.session() as session:
            if after is not None:
                seq = await session.scalar(select(AuditLogRow.seq).where(AuditLogRow.id == after))
                query = query.where(AuditLogRow.seq < (seq if seq is not None else 0))
            rows = list(await session.scalars(query))
            found = await session.execute(select(ProjectRow.id, ProjectRow.name))
            names = {project_id: name for project_id, name in found.all()}
        return [_entry(row, names) for row in rows[:limit]], len(rows) > limit


def _actor(row: AuditLogRow) -> dict[str, Any]:
    if row.actor_key_id and not row.actor_user:
        key = {"id": row.actor_key_id, "type": "service_account"}
        return {"type": "api_key", "api_key": {**key, "service_account": {"id": row.actor_key_id}}}
    user = {"id": row.actor_user, "email": None} if row.actor_user else None
    return {"type": "session", "session": {"user": user, "ip_address": row.actor_ip}}


def _entry(row: AuditLogRow, names: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "object": "organization.audit_log",
        "id": row.id,
        "type": row.type,
        "effective_at": row.effective_at,
        "actor": _actor(row),
    }
    if row.project_id:
        entry["project"] = {"id": row.project_id, "name": names.get(row.project_id)}
    details: dict[str, Any] = {"id": row.resource_id}
    if row.type == "project.updated":
        details["changes_requested"] = row.data
    elif row.data:
        details["data"] = row.data
    entry[row.type] = details
    return entry
