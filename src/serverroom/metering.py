"""Admission and billing seam: rate limits before a request runs, usage after it ends.

Services call ``metering.admit(Admission(...))`` once they know the prompt size and output
budget, attach ``ticket.headers`` to the reply, and call ``ticket.settle(usage)`` when the real
token counts are known. ``NullMetering`` admits everything and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from serverroom.catalog import ModelEntry
from serverroom.principal import Principal


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int = 0
    tools_usd: float = 0.0  # hosted tool calls the request made (e.g. file_search), in dollars


@dataclass(frozen=True)
class Admission:
    """What a request asks to be admitted for: who calls which model on which endpoint, with
    how many prompt tokens and at most how many output tokens (``batch``: a Batch API line)."""

    principal: Principal
    entry: ModelEntry
    endpoint: str
    prompt_tokens: int
    max_output_tokens: int
    batch: bool = False


class Ticket(Protocol):
    @property
    def headers(self) -> dict[str, str]:
        """Rate-limit headers for the reply."""

    async def settle(self, usage: Usage) -> None:
        """Record the real usage (and release the unused part of the reservation)."""


class Metering(Protocol):
    async def admit(self, admission: Admission) -> Ticket:
        """Reserve capacity or raise ``RateLimitError``."""


@dataclass
class NullTicket:
    headers: dict[str, str] = field(default_factory=dict)

    async def settle(self, usage: Usage) -> None:
        return None


class NullMetering:
    async def admit(self, admission: Admission) -> Ticket:
        return NullTicket()
