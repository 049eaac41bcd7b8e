"""``Accounts``: the accounts package assembled from ``Settings`` — one per app (or CLI run).

It owns the repository, ledger, limiter, tier ladder, authenticator and metering, starts them
(bootstrap admin key, Redis connection) and offers the admin operations shared by the HTTP
admin API and the CLI (revocation is published to every replica through Redis).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from serverroom.accounts.audit import AuditLog
from serverroom.accounts.auth import Authenticator
from serverroom.accounts.ledger import Ledger
from serverroom.accounts.limiter import Limiter
from serverroom.accounts.metering import AccountsMetering
from serverroom.accounts.quota import MonthSpend
from serverroom.accounts.repository import AccountsRepository, KeyInfo, ProjectInfo
from serverroom.accounts.tiers import Ladder, Tier
from serverroom.catalog import Catalog
from serverroom.context import AppContext
from serverroom.errors import InvalidRequestError
from serverroom.settings import Settings
from serverroom.storage.db import Database

logger = logging.getLogger("serverroom.accounts")


def _redis_client(url: str | None) -> Any:
    if not url:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(url)


class Accounts:
    """Everything about projects, keys, limits and usage, for one app."""

    def __init__(self, settings: Settings, db: Database, catalog: Catalog) -> None:
        self.settings = settings
        self.db = db
        self.catalog = catalog
        self.repo = AccountsRepository(db)
        self.audit = AuditLog(db)
        self.ledger = Ledger(db, flush_seconds=settings.ledger.flush_seconds)
        self.ladder = Ladder.load(settings.limits.tiers_file)
        self.redis = _redis_client(settings.redis_url)
        self.limiter = Limiter(
            window_seconds=settings.limits.window_seconds,
            redis_url=settings.redis_url,
            prefix=settings.limits.redis_prefix,
        )
        self.auth = Authenticator(settings, self.repo, self.redis)
        self.metering = AccountsMetering(
            repo=self.repo,
            ledger=self.ledger,
            limiter=self.limiter,
            ladder=self.ladder,
            limits_enabled=settings.limits.enabled,
            limit_open_requests=settings.limits.in_dev_mode,
            spend_alert_url=settings.limits.spend_alert_url,
        )

    async def start(self) -> None:
        """Store the bootstrap admin key (if configured) and warn when auth is open."""
        admin_key = self.settings.auth.admin_key
        if admin_key is not None and admin_key.get_secret_value():
            value = admin_key.get_secret_value()
            if not value.startswith("sk-admin-"):
                logger.warning("auth.admin_key should start with sk-admin-; using it anyway")
            await self.repo.ensure_admin_key(value)
        if not await self.auth.enforced():
            self.auth.warn_if_exposed(self.settings.host)

    async def close(self) -> None:
        await self.ledger.close()  # deferred usage rows, while the database is still open
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()

    # -- admin operations (HTTP and CLI) ------------------------------------------------------

    async def revoke_key(self, key_id: str) -> KeyInfo:
        info = await self.repo.revoke_key(key_id)
        await self.auth.publish_revocation(key_id)
        return info

    async def archive(self, project: ProjectInfo) -> ProjectInfo:
        """Archive a project: its keys are revoked (on every replica) and no new ones made."""
        await self.repo.archive_project(project.id)
        for key in await self.repo.list_keys(project.id):
            if key.revoked_at is None:
                await self.revoke_key(key.id)
        return await self.repo.get_project(project.id)

    async def project(self, project_id: str) -> ProjectInfo:
        """A project with its spend up to date (this replica's deferred usage written first)."""
        await self.ledger.settled()
        return await self.repo.get_project(project_id)

    async def tier_of(self, project_id: str) -> Tier:
        return await self.metering.tier_of(project_id, fresh=True)

    async def set_spend_limit(self, project: ProjectInfo, monthly_usd: float | None) -> MonthSpend:
        await self.repo.set_spend_limit(project.id, monthly_usd)
        return await self.month_spend(project.id)

    async def month_spend(self, project_id: str) -> MonthSpend:
        """This month's spend and limit, with this replica's deferred usage written first."""
        await self.ledger.settled()
        return await self.metering.quotas.spend(project_id, fresh=True)

    async def pin_tier(self, project: ProjectInfo, tier: str | None) -> Tier:
        if tier is not None and tier not in self.ladder.names():
            raise InvalidRequestError(
                f"Unknown tier '{tier}'; known tiers: {', '.join(self.ladder.names())}.",
                param="tier",
            )
        await self.repo.pin_tier(project.id, tier)
        self.metering.forget(project.id)
        return await self.tier_of(project.id)


@asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Start the app's ``Accounts`` (after migrations) and close it on shutdown."""
    accounts = ctx.accounts
    if accounts is None:
        yield
        return
    await accounts.start()
    try:
        yield
    finally:
        await accounts.close()


def install(ctx: AppContext) -> Accounts:
    """Build ``Accounts`` for an app and plug it in as its metering and authenticator."""
    accounts = Accounts(ctx.settings, ctx.db, ctx.catalog)
    ctx.metering = accounts.metering
    ctx.accounts = accounts
    return accounts
