"""Monthly spend limits: a project with ``monthly_spend_limit_usd`` set is refused with the
platform's 429 ``insufficient_quota`` once its ledger's spend this calendar month (UTC) reaches
the limit, until the month turns or an admin raises the limit. Spend alerts: the first time a
project passes 50%, 80% and 100% of its limit in a month, this replica logs a warning (the
``serverroom.accounts.spend`` logger) and, with ``limits.spend_alert_url``, POSTs it there.
Spend is read from the ledger at most every ``QUOTA_CACHE_SECONDS`` per project, so a burst may
overshoot the limit by what it spends in that time."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass

import httpx

from serverroom.accounts.repository import AccountsRepository
from serverroom.errors import InsufficientQuotaError, NotFoundError

logger = logging.getLogger("serverroom.accounts.spend")

QUOTA_CACHE_SECONDS = 2.0
ALERTS = (0.5, 0.8, 1.0)
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. This"
    " project has spent ${spent:.2f} of its ${limit:.2f} monthly spend limit."
)


def month_start(now: float | None = None) -> int:
    """The epoch second the current UTC calendar month began."""
    today = datetime.datetime.fromtimestamp(now or time.time(), datetime.UTC)
    return int(today.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


@dataclass(frozen=True)
class MonthSpend:
    limit_usd: float | None
    spent_usd: float
    month: int  # month_start() of the month it counts


class Quotas:
    def __init__(self, repo: AccountsRepository, alert_url: str | None = None) -> None:
        """``alert_url``: where each spend alert is also POSTed as JSON (sent once, in the
        background; a failure is logged)."""
        self.repo = repo
        self.alert_url = alert_url
        self._sending: set[asyncio.Task[None]] = set()
        self._cache: dict[str, tuple[MonthSpend, float]] = {}
        self._alerted: set[tuple[str, int, float]] = set()

    async def spend(self, project_id: str, fresh: bool = False) -> MonthSpend:
        cached = self._cache.get(project_id)
        now = time.monotonic()
        month = month_start()
        if cached is not None and cached[1] > now and cached[0].month == month and not fresh:
            return cached[0]
        try:
            project = await self.repo.get_project(project_id)
        except NotFoundError:
            return MonthSpend(None, 0.0, month)
        spent = 0.0
        if project.spend_limit_usd is not None or fresh:  # fresh: an admin looks, limit or not
            spent = await self.repo.spend_since(project_id, month)
        found = MonthSpend(project.spend_limit_usd, spent, month)
        self._cache[project_id] = (found, now + QUOTA_CACHE_SECONDS)
        self._alert(project_id, found)
        return found

    def forget(self, project_id: str) -> None:
        self._cache.pop(project_id, None)

    async def check(self, project_id: str) -> None:
        """Raise ``InsufficientQuotaError`` if the project has spent its monthly limit."""
        found = await self.spend(project_id)
        if found.limit_usd is not None and found.spent_usd >= found.limit_usd:
            raise InsufficientQuotaError(
                QUOTA_MESSAGE.format(spent=found.spent_usd, limit=found.limit_usd)
            )

    def _alert(self, project_id: str, found: MonthSpend) -> None:
        limit = found.limit_usd
        if not limit:
            return
        for share in ALERTS:
            key = (project_id, found.month, share)
            if found.spent_usd >= share * limit and key not in self._alerted:
                self._alerted.add(key)
                logger.warning(
                    "project %s has spent $%.2f, %d%% of its $%.2f monthly spend limit",
                    project_id,
                    found.spent_usd,
                    int(share * 100),
                    limit,
                )
                if self.alert_url:
                    self._post(project_id, found, share)

    def _post(self, project_id: str, found: MonthSpend, share: float) -> None:
        alert = {
            "type": "spend.alert",
            "project_id": project_id,
            "threshold": share,
            "spent_usd": round(found.spent_usd, 6),
            "limit_usd": found.limit_usd,
            "month_start": found.month,
            "created_at": int(time.time()),
        }
        task = asyncio.create_task(self._send(alert))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, alert: dict[str, object]) -> None:
        assert self.alert_url is not None
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                reply = await client.post(self.alert_url, json=alert)
                reply.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("the spend alert could not be sent to %s: %s", self.alert_url, exc)
