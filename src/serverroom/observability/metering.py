"""The metering seam, observed: wraps the app's ``Metering`` so every admission names the
request's model and project (``observability.requests``), every refusal by a rate limit is
counted, and every settled usage adds its tokens to the metrics."""

from __future__ import annotations

from dataclasses import dataclass

from serverroom.errors import RateLimitError
from serverroom.metering import Admission, Metering, Ticket, Usage
from serverroom.observability.metrics import Metrics
from serverroom.observability.requests import note_call


@dataclass
class ObservedTicket:
    inner: Ticket
    metrics: Metrics
    model: str
    project: str

    @property
    def headers(self) -> dict[str, str]:
        return self.inner.headers

    async def settle(self, usage: Usage) -> None:
        await self.inner.settle(usage)
        counts = {
            "input": usage.input_tokens,
            "cached_input": usage.cached_tokens,
            "output": usage.output_tokens,
            "reasoning": usage.reasoning_tokens,
        }
        self.metrics.billed(self.model, self.project, counts)


class ObservedMetering:
    def __init__(self, inner: Metering, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def admit(self, admission: Admission) -> Ticket:
        model, project = admission.entry.id, admission.principal.project_id
        note_call(model, project)
        try:
            ticket = await self.inner.admit(admission)
        except RateLimitError as exc:
            self.metrics.rate_limited.labels(model, project, exc.error_type or "requests").inc()
            raise
        return ObservedTicket(ticket, self.metrics, model, project)
