"""The accounts implementation of the ``Metering`` protocol: rate limits, ledger, tiers.

``admit`` refuses a project past its monthly spend limit (``quota``), resolves its tier (cached
briefly), takes the RPM/TPM hits and returns a ticket whose headers carry the ``x-ratelimit-*``
values. ``settle`` corrects the token reservation to the actual count and records the ledger
row, whose cost is added to the project's spend (which may promote the project to the next tier)
— once per ticket. An interactive request's row is deferred (written with others within
``ledger.flush_seconds``); a batch line's is written before the line counts as done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from serverroom.accounts.ledger import Ledger, Spend
from serverroom.accounts.limiter import Limiter, Reservation
from serverroom.accounts.quota import Quotas
from serverroom.accounts.repository import AccountsRepository
from serverroom.accounts.tiers import Ladder, Tier
from serverroom.errors import NotFoundError
from serverroom.metering import Admission, Ticket, Usage

logger = logging.getLogger("serverroom.accounts")

TIER_CACHE_SECONDS = 2.0


@dataclass
class AccountsTicket:
    metering: AccountsMetering
    admission: Admission
    reservation: Reservation | None
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False

    async def settle(self, usage: Usage) -> None:
        if self.settled:
            return
        self.settled = True
        # Shielded: a client that disconnects mid-stream cancels the reply, not its billing.
        await asyncio.shield(self.metering.settle(self, usage))


class AccountsMetering:
    """Admission by tier limits and billing into the ledger."""

    def __init__(
        self,
        *,
        repo: AccountsRepository,
        ledger: Ledger,
        limiter: Limiter,
        ladder: Ladder,
        limits_enabled: bool,
        limit_open_requests: bool,
        spend_alert_url: str | None = None,
    ) -> None:
        self.repo = repo
        self.ledger = ledger
        self.limiter = limiter
        self.ladder = ladder
        self.limits_enabled = limits_enabled
        self.limit_open_requests = limit_open_requests
        self.quotas = Quotas(repo, spend_alert_url)
        self._tiers: dict[str, tuple[Tier, float]] = {}
        ledger.on_spend = self.spent

    async def tier_of(self, project_id: str, fresh: bool = False) -> Tier:
        """The project's current tier (pinned, or by cumulative spend)."""
        cached = self._tiers.get(project_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now and not fresh:
            return cached[0]
        try:
            project = await self.repo.get_project(project_id)
            tier = self.ladder.resolve(project.pinned_tier, project.spend_usd)
        except NotFoundError:
            tier = self.ladder.tiers[0]
        self._tiers[project_id] = (tier, now + TIER_CACHE_SECONDS)
        return tier

    def forget(self, project_id: str) -> None:
        self._tiers.pop(project_id, None)

    async def admit(self, admission: Admission) -> Ticket:
        principal, entry = admission.principal, admission.entry
        await self.quotas.check(principal.project_id)  # the monthly spend limit (429)
        reservation = None
        limited = self.limits_enabled and (principal.key_id is not None or self.limit_open_requests)
        if limited:
            tier = await self.tier_of(principal.project_id)
            reservation = await self.limiter.acquire(
                principal.project_id,
                entry.id,
                tier.limits_for(entry.id, entry.target),
                admission.prompt_tokens + admission.max_output_tokens,
            )
        headers = dict(reservation.headers) if reservation else {}
        return AccountsTicket(self, admission, reservation, headers)

    async def settle(self, ticket: AccountsTicket, usage: Usage) -> None:
        admission = ticket.admission
        project_id = admission.principal.project_id
        try:
            if ticket.reservation is not None:
                await self.limiter.settle(
                    ticket.reservation, usage.input_tokens + usage.output_tokens
                )
            # A batch line's row is written before the line counts as done; an interactive
            # reply's is written with others shortly after, and ``spent`` hears of it then.
            defer = not admission.batch and self.ledger.flush_seconds > 0
            recorded = await self.ledger.record(
                project_id=project_id,
                api_key_id=admission.principal.key_id,
                entry=admission.entry,
                endpoint=admission.endpoint,
                usage=usage,
                batch=admission.batch,
                defer=defer,
            )
            if recorded.cost > 0 and not defer:
                self.spent(project_id, recorded.project)
        except Exception:  # billing must never break a reply that was already produced
            logger.exception("could not settle usage for project %s", project_id)

    def spent(self, project_id: str, project: Spend | None) -> None:
        """A project's spend grew: its tier is re-read from the new (pinned tier, spend)."""
        before = self._tiers.get(project_id, (None, 0.0))[0]
        if project is None:  # no project row (open auth): read again when next needed
            self.forget(project_id)
            return
        after = self.ladder.resolve(*project)
        self._tiers[project_id] = (after, time.monotonic() + TIER_CACHE_SECONDS)
        if before is not None and after.name != before.name:
            logger.info("project %s moved from %s to %s", project_id, before.name, after.name)
