"""The usage page's figures: tokens and cost per day, per project or per model, from the ledger.

The same ledger rows as ``/v1/organization/usage/completions`` and ``/costs``: one bucket per
UTC day of the last ``days`` days, grouped by project or by model, with each group's totals and
the share of input tokens that came from the prompt cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from serverroom.accounts.ledger import Ledger, Totals
from serverroom.dashboard.charts import Series, legend, stacked_bars

DAY = 86400
GROUPS = {"project": "project_id", "model": "model"}


@dataclass
class Row:
    """One group's totals over the range."""

    name: str
    totals: Totals = field(default_factory=Totals)

    @property
    def cached_share(self) -> float:
        return (
            self.totals.cached_tokens / self.totals.input_tokens if self.totals.input_tokens else 0
        )


@dataclass
class UsageView:
    days: int
    group: str
    tokens_chart: str
    cost_chart: str
    legend: list[tuple[str, str]]
    rows: list[Row]
    total: Row


def _tokens(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _usd(value: float) -> str:
    if value >= 1:
        return f"${value:,.2f}"
    return "$" + (f"{value:.7f}".rstrip("0").rstrip(".") or "0")


async def usage_view(
    ledger: Ledger, *, days: int, group: str, names: dict[str, str], now: float | None = None
) -> UsageView:
    """The charts and table for the last ``days`` days grouped by ``group``."""
    today = int(now if now is not None else time.time()) // DAY * DAY
    start = today - (days - 1) * DAY
    buckets = await ledger.buckets(
        start_time=start, end_time=today + DAY, width=DAY, group_by=[GROUPS[group]]
    )
    keys = sorted({key[0] or "" for b in buckets for key in b.groups})
    rows = {k: Row(names.get(k, k) or "(none)") for k in keys}
    tokens = {k: [0.0] * len(buckets) for k in keys}
    cost = {k: [0.0] * len(buckets) for k in keys}
    total = Row("All")
    for i, bucket in enumerate(buckets):
        for (key, *_), t in bucket.groups.items():
            k = key or ""
            tokens[k][i] = t.input_tokens + t.output_tokens
            cost[k][i] = t.cost_usd
            for target in (rows[k].totals, total.totals):
                _add(target, t)
    labels = [time.strftime("%m-%d", time.gmtime(b.start_time)) for b in buckets]
    token_series = [Series(rows[k].name, tokens[k]) for k in keys]
    cost_series = [Series(rows[k].name, cost[k]) for k in keys]
    return UsageView(
        days=days,
        group=group,
        tokens_chart=stacked_bars(labels, token_series, _tokens, "Tokens per day"),
        cost_chart=stacked_bars(labels, cost_series, _usd, "Cost per day"),
        legend=legend(token_series),
        rows=sorted(rows.values(), key=lambda r: -r.totals.cost_usd),
        total=total,
    )


def _add(target: Totals, t: Totals) -> None:
    target.input_tokens += t.input_tokens
    target.cached_tokens += t.cached_tokens
    target.output_tokens += t.output_tokens
    target.reasoning_tokens += t.reasoning_tokens
    target.requests += t.requests
    target.cost_usd += t.cost_usd
