"""The accounts commands of the ``serverroom`` CLI: projects, keys, tiers and the usage report.

They act on the configured database directly (``SERVERROOM_DATABASE_URL`` / data dir), so they
work with or without a running server; revocations are also published through Redis when
``SERVERROOM_REDIS_URL`` is set, so running replicas refuse the key on their next request.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from serverroom.accounts.repository import ProjectInfo
from serverroom.accounts.service import Accounts
from serverroom.errors import APIError
from serverroom.principal import DEFAULT_PROJECT, Principal
from serverroom.settings import Settings

T = TypeVar("T")

projects_app = typer.Typer(help="Manage projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
tiers_app = typer.Typer(help="Usage tiers.", no_args_is_help=True)
# Ids must print whole (they are pasted into other commands), even when piped.
console = Console() if sys.stdout.isatty() else Console(width=220)


def _when(ts: int | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _run(action: Callable[[Accounts], Awaitable[T]]) -> T:
    """Run ``action`` against a migrated database with a fresh ``Accounts``."""
    from serverroom.catalog import Catalog
    from serverroom.storage.db import Database

    async def main() -> T:
        settings = Settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url())
        accounts = Accounts(settings, db, Catalog.load(settings.catalog_file))
        try:
            await db.migrate()
            return await action(accounts)
        finally:
            await accounts.close()
            await db.close()

    try:
        return asyncio.run(main())
    except APIError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _operator() -> Principal:
    """Who acts from the CLI: the audit log's session user ``cli:<login>``."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Principal(DEFAULT_PROJECT, is_admin=True, session_user=f"cli:{login}")


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project."""

    async def create(a: Accounts) -> ProjectInfo:
        project = await a.repo.create_project(name)
        data = {"name": name}
        await a.audit.record(
            "project.created", _operator(), project_id=project.id, resource_id=project.id, data=data
        )
        return project

    project = _run(create)
    console.print(f"created project [bold]{project.name}[/bold] ({project.id})")


@projects_app.command("list")
def projects_list() -> None:
    """List projects with their tier and spend."""

    async def rows(a: Accounts) -> list[tuple[str, str, str, str, str]]:
        out = []
        for p in await a.repo.list_projects():
            tier = await a.tier_of(p.id)
            pinned = " (pinned)" if p.pinned_tier else ""
            out.append(
                (p.id, p.name, tier.name + pinned, f"${p.spend_usd:.4f}", _when(p.created_at))
            )
        return out

    table = Table("id", "name", "tier", "spend", "created")
    for row in _run(rows):
        table.add_row(*row)
    console.print(table)


@keys_app.command("create")
def keys_create(
    project: str = typer.Option(None, "--project", help="Project name or id."),
    name: str = typer.Option("", "--name", help="A label for the key."),
    admin: bool = typer.Option(False, "--admin", help="Create an admin key (sk-admin-...)."),
) -> None:
    """Create a key; its value is printed once and never stored."""
    if not admin and not project:
        console.print("[red]error:[/red] give --project NAME (or --admin)")
        raise typer.Exit(2)

    async def create(a: Accounts) -> tuple[str, str]:
        project_id = None if admin else (await a.repo.find_project(project)).id
        created = await a.repo.create_key(project_id, name=name, admin=admin)
        scopes = ["api.organization.admin"] if admin else ["api.all"]
        await a.audit.record(
            "api_key.created",
            _operator(),
            project_id=project_id,
            resource_id=created.info.id,
            data={"name": name, "scopes": scopes},
        )
        return created.info.id, created.value

    key_id, value = _run(create)
    console.print(f"created key {key_id}; store it now, it is not shown again:")
    print(value)


@keys_app.command("list")
def keys_list(project: str = typer.Option(None, "--project", help="Only this project.")) -> None:
    """List keys (redacted)."""

    async def fetch(a: Accounts) -> list[tuple[str, str, str, str, str, str]]:
        project_id = (await a.repo.find_project(project)).id if project else None
        return [
            (
                k.id,
                "admin" if k.is_admin else (k.project_id or ""),
                k.name,
                k.redacted_value,
                _when(k.created_at),
                "revoked " + _when(k.revoked_at) if k.revoked_at else "active",
            )
            for k in await a.repo.list_keys(project_id)
        ]

    table = Table("id", "project", "name", "key", "created", "status")
    for row in _run(fetch):
        table.add_row(*row)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key (effective on the next request, on every replica)."""

    async def revoke(a: Accounts) -> None:
        info = await a.revoke_key(key_id)
        await a.audit.record(
            "api_key.deleted", _operator(), project_id=info.project_id, resource_id=key_id
        )

    _run(revoke)
    console.print(f"revoked {key_id}")


@tiers_app.command("set")
def tiers_set(
    tier: str = typer.Argument(..., help="Tier name, or 'auto' to unpin."),
    project: str = typer.Option(..., "--project", help="Project name or id."),
) -> None:
    """Pin a project's usage tier (or 'auto' to follow its spend again)."""

    async def pin(a: Accounts) -> str:
        info = await a.repo.find_project(project)
        pinned = None if tier == "auto" else tier
        found = await a.pin_tier(info, pinned)
        await a.audit.record(
            "project.updated",
            _operator(),
            project_id=info.id,
            resource_id=info.id,
            data={"tier": pinned},
        )
        return found.name

    console.print(f"project {project} is now on tier [bold]{_run(pin)}[/bold]")


@tiers_app.command("list")
def tiers_list() -> None:
    """Show the tier ladder."""

    async def ladder(a: Accounts) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                t.name,
                f"${t.spend_usd:g}",
                str(t.default.rpm),
                str(t.default.tpm),
                ", ".join(f"{m}: {v.rpm}/{v.tpm}" for m, v in t.models.items()),
            )
            for t in a.ladder.tiers
        ]

    table = Table("tier", "spend ≥", "rpm", "tpm", "per-model rpm/tpm")
    for row in _run(ladder):
        table.add_row(*row)
    console.print(table)


def usage(days: int = typer.Option(30, "--days", help="Report the last N days.")) -> None:
    """Usage and cost per project and model."""
    since = int(time.time()) - days * 86400
    totals = _run(lambda a: a.ledger.summary(since))
    table = Table("project", "model", "requests", "input", "cached", "output", "cost ($)")
    grand = 0.0
    for (project, model), t in sorted(totals.items()):
        grand += t.cost_usd
        table.add_row(
            project,
            model,
            str(t.requests),
            str(t.input_tokens),
            str(t.cached_tokens),
            str(t.output_tokens),
            f"{t.cost_usd:.6f}",
        )
    console.print(table)
    console.print(f"total cost over {days} days: ${grand:.6f}")


def register(app: typer.Typer) -> None:
    """Add the accounts commands to the main CLI."""
    app.add_typer(projects_app, name="projects")
    app.add_typer(keys_app, name="keys")
    app.add_typer(tiers_app, name="tiers")
    app.command("usage")(usage)
