"""A pool of upstream servers for one model: which member a request goes to, and their health.

Members are OpenAI-compatible base URLs. A request goes to a healthy member: with an affinity
key (a conversation, a ``previous_response_id`` chain, a long shared prefix) to the member that
rendezvous hashing picks for the key, so the turns that share a prefix find it in that
member's KV cache, unless that member is busier than the least-loaded one by more than
``AFFINITY_SLACK`` requests; without a key to the least-loaded member. A member that fails
``max_failures`` times in a row is taken out; the health loop probes every member and puts a
passing one back.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass

from serverroom.catalog import UpstreamSpec

logger = logging.getLogger("serverroom.upstream")

AFFINITY_SLACK = 4  # in-flight requests an affinity member may run beyond the least-loaded one


@dataclass
class Member:
    """One upstream server and what the pool knows of it."""

    url: str
    healthy: bool = True
    inflight: int = 0
    failures: int = 0  # in a row
    served: int = 0
    last_error: str = ""

    def weight(self, key: str) -> int:
        """This member's rendezvous score for an affinity key (the highest score wins)."""
        digest = hashlib.blake2b(f"{key}|{self.url}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")


class Pool:
    """The members serving one upstream model, and the choice between them."""

    def __init__(self, spec: UpstreamSpec) -> None:
        self.spec = spec
        self.members = [Member(url) for url in spec.base_urls]
        self._turn = itertools.count()

    def candidates(self, affinity: str | None = None) -> list[Member]:
        """Members in the order to try them: the chosen one first, then the other healthy
        ones by load, then (a last resort when every member is out) the unhealthy ones."""
        healthy = [m for m in self.members if m.healthy]
        down = [m for m in self.members if not m.healthy]
        turn = next(self._turn)
        order = sorted(
            healthy,
            key=lambda m: (m.inflight, (self.members.index(m) - turn) % len(self.members)),
        )
        if affinity and order and self.spec.affinity:
            preferred = max(order, key=lambda m: m.weight(affinity))
            if preferred.inflight <= order[0].inflight + AFFINITY_SLACK:
                order.remove(preferred)
                order.insert(0, preferred)
        return order + down

    def succeeded(self, member: Member) -> None:
        member.failures = 0
        member.served += 1
        if not member.healthy:
            logger.info("upstream %s is back", member.url)
        member.healthy = True

    def failed(self, member: Member, why: str) -> None:
        member.failures += 1
        member.last_error = why
        if member.healthy and member.failures >= self.spec.max_failures:
            member.healthy = False
            logger.warning(
                "upstream %s is out after %d failures: %s", member.url, member.failures, why
            )

    def checked(self, member: Member, ok: bool, why: str) -> None:
        """A health check's outcome: a member that passed is back in, one that failed is out."""
        if ok:
            if not member.healthy:
                logger.info("upstream %s passed its health check", member.url)
            member.healthy, member.failures = True, 0
        elif member.healthy:
            member.healthy, member.last_error = False, why
            logger.warning("upstream %s is out: %s", member.url, why)

    def status(self) -> list[dict[str, object]]:
        """The members' state, for ``/health`` and the admin views."""
        return [
            {
                "url": m.url,
                "healthy": m.healthy,
                "inflight": m.inflight,
                "served": m.served,
                "last_error": m.last_error or None,
            }
            for m in self.members
        ]
