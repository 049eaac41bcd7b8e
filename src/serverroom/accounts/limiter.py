"""RPM/TPM rate limits per project and model, on the ``limits`` library.

Strategy: ``limits``' sliding-window counter (``limits.aio``), in process memory without Redis
and in Redis (shared by every replica) with ``redis_url``. A request takes one hit on the request
limit and a weighted hit (``cost=``) of its reserved tokens (prompt + max output) on the token
limit; ``give_back`` returns the unused part of the reservation to the current window (clamped
at zero; if the window has rolled over since, the give-back is lost: an approximation that can
only under-admit). The limit key is ``(project id, model id as requested)``.

When Redis cannot be reached, limits fall back to this replica's memory (each replica then
enforces the full limit on its own) and Redis is tried again every ``RETRY_SECONDS``;
``degraded`` says so, and ``/health`` reports it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.exceptions import RedisError

from serverroom.accounts.tiers import ModelLimits
from serverroom.errors import RateLimitError

_ADJUST_LUA = """
local v = tonumber(redis.call('get', KEYS[1]) or '0')
local nv = math.max(0, v + tonumber(ARGV[1]))
if redis.call('exists', KEYS[1]) == 1 then
    redis.call('set', KEYS[1], nv, 'KEEPTTL')
elseif nv > 0 then
    redis.call('set', KEYS[1], nv, 'PX', ARGV[2])
end
return nv
"""

logger = logging.getLogger("serverroom.accounts")
RETRY_SECONDS = 30.0
T = TypeVar("T")


class TokensRateLimitError(RateLimitError, error_type="tokens"):
    """Over the project's tokens-per-minute limit."""


def format_duration(seconds: float) -> str:
    """A Go-style duration like the platform's headers: ``20ms``, ``1.5s``, ``6m0s``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{round(secs, 3):.3f}".rstrip("0").rstrip(".") + "s"
    if hours >= 1:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes >= 1:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


def wait_time(
    window: tuple[int, float, int, float], expiry: float, limit: int, requested: int
) -> float:
    """Seconds until ``requested`` more fits under ``limit`` in a sliding-window counter."""
    prev, prev_ttl, cur, cur_ttl = window
    used = math.floor(prev * prev_ttl / expiry + cur)
    excess = used + requested - limit
    if excess <= 0:
        return 0.0
    t_end = max(0.0, cur_ttl - expiry)
    if prev > 0:
        needed = excess * expiry / prev
        if needed <= min(prev_ttl, t_end):
            return needed
    if cur == 0:
        return t_end
    after_roll = expiry - (limit - requested) * expiry / cur
    return t_end + max(0.0, after_roll)


@dataclass
class Reservation:
    """What ``acquire`` took, so that ``give_back`` can return the unused tokens."""

    project_id: str
    model: str
    limits: ModelLimits
    tokens: int
    headers: dict[str, str]


class Limiter:
    """Admits requests under a project's RPM/TPM for a model."""

    def __init__(self, *, window_seconds: int, redis_url: str | None, prefix: str) -> None:
        self.window = window_seconds
        self.redis: RedisStorage | None = None
        if redis_url:
            uri = redis_url if redis_url.startswith("async+") else "async+" + redis_url
            self.redis = RedisStorage(uri, implementation="redispy", key_prefix=f"{prefix}:limits")
            self.storage: MemoryStorage | RedisStorage = self.redis
        else:
            self.storage = MemoryStorage()
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._adjust_script: Any = None
        self._memory = self.storage if self.redis is None else MemoryStorage()
        self._degraded_at: float | None = None

    @property
    def degraded(self) -> bool:
        """Redis is configured but unreachable: this replica counts on its own."""
        return self._degraded_at is not None

    def _use(self, storage: MemoryStorage | RedisStorage) -> None:
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    def _degrade(self, exc: Exception) -> None:
        if self._degraded_at is None:
            logger.warning("Redis unreachable (%s): rate limits count in this replica only", exc)
        self._degraded_at = time.monotonic()
        self._use(self._memory)

    async def _shared(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` on Redis when it answers, else on this replica's memory."""
        if self._degraded_at is not None and time.monotonic() - self._degraded_at > RETRY_SECONDS:
            assert self.redis is not None
            self._use(self.redis)
            self._degraded_at = None
        if self._degraded_at is None and self.redis is not None:
            try:
                return await call()
            except RedisError as exc:
                self._degrade(exc)
        return await call()

    def _item(self, amount: int) -> RateLimitItem:
        return RateLimitItemPerSecond(amount, self.window)

    def _unit(self) -> str:
        return "min" if self.window == 60 else f"{self.window}s"

    async def _window(self, item: RateLimitItem, *ids: str) -> tuple[int, float, int, float]:
        return await self.storage.get_sliding_window(item.key_for(*ids), item.get_expiry())

    async def _adjust(self, item: RateLimitItem, ids: tuple[str, ...], delta: int) -> None:
        """Add ``delta`` (negative: give back) to the current window's counter, floor 0."""
        if delta == 0:
            return
        key = item.key_for(*ids)
        expiry = item.get_expiry()
        if self.redis is not None and self.storage is self.redis:
            bridge = cast(Any, self.redis.bridge)
            if self._adjust_script is None:
                self._adjust_script = bridge.get_connection().register_script(_ADJUST_LUA)
            await self._adjust_script([bridge.prefixed_key(f"{{{key}}}")], [delta, expiry * 2000])
            return
        memory = cast(MemoryStorage, self.storage)
        current = memory.sliding_window_keys(key, expiry, time.time())[1]
        if delta < 0:
            await memory.decr(current, -delta)
        else:
            await memory.incr(current, 2 * expiry, delta)

    def _headers(
        self,
        limits: ModelLimits,
        rwin: tuple[int, float, int, float],
        twin: tuple[int, float, int, float],
    ) -> dict[str, str]:
        """The six ``x-ratelimit-*`` headers for the current request and token windows."""
        expiry = float(self.window)
        headers = {}
        for kind, limit, window in (("requests", limits.rpm, rwin), ("tokens", limits.tpm, twin)):
            used = math.floor(window[0] * window[1] / expiry + window[2])
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, limit - used))
            headers[f"x-ratelimit-reset-{kind}"] = format_duration(
                wait_time(window, expiry, limit, limit)
            )
        return headers

    async def _refusal(
        self,
        kind: str,
        project: str,
        model: str,
        limits: ModelLimits,
        requested: int,
    ) -> RateLimitError:
        """The 429 for a refused hit, with every ``x-ratelimit-*`` header (as on any reply)."""
        rwin = await self._window(self._item(limits.rpm), "rpm", project, model)
        twin = await self._window(self._item(limits.tpm), "tpm", project, model)
        limit, window = (limits.rpm, rwin) if kind == "requests" else (limits.tpm, twin)
        expiry = float(self.window)
        used = math.floor(window[0] * window[1] / expiry + window[2])
        error = self._error(
            kind,
            model,
            project,
            limit,
            used,
            requested,
            wait_time(window, expiry, limit, requested),
        )
        error.headers.update(self._headers(limits, rwin, twin))
        return error

    def _error(
        self,
        kind: str,
        model: str,
        project: str,
        limit: int,
        used: int,
        requested: int,
        wait: float,
    ) -> RateLimitError:
        label = "requests" if kind == "requests" else "tokens"
        short = "RPM" if kind == "requests" else "TPM"
        cls = RateLimitError if kind == "requests" else TokensRateLimitError
        where = f"for {model} in project {project} on {label} per {self._unit()} ({short})"
        if requested > limit:
            return cls(
                f"Request too large {where}: Limit {limit}, Requested {requested}. The input or"
                " output tokens must be reduced in order to run successfully.",
                headers={"x-should-retry": "false"},
            )
        wait = math.ceil((wait + 0.01) * 1000) / 1000
        return cls(
            f"Rate limit reached {where}: Limit {limit}, Used {used}, Requested {requested}."
            f" Please try again in {format_duration(wait)}.",
            headers={"retry-after": f"{math.ceil(wait)}", "retry-after-ms": f"{int(wait * 1000)}"},
        )

    async def acquire(
        self, project_id: str, model: str, limits: ModelLimits, tokens: int
    ) -> Reservation:
        """Take one request and ``tokens`` tokens, or raise a 429 ``RateLimitError``."""
        return await self._shared(lambda: self._acquire(project_id, model, limits, tokens))

    async def _acquire(
        self, project_id: str, model: str, limits: ModelLimits, tokens: int
    ) -> Reservation:
        rpm, tpm = self._item(limits.rpm), self._item(limits.tpm)
        rids, tids = ("rpm", project_id, model), ("tpm", project_id, model)
        tokens = max(0, tokens)
        if not await self.strategy.hit(rpm, *rids, cost=1):
            raise await self._refusal("requests", project_id, model, limits, 1)
        if tokens > 0 and not await self.strategy.hit(tpm, *tids, cost=tokens):
            await self._adjust(rpm, rids, -1)
            raise await self._refusal("tokens", project_id, model, limits, tokens)
        rwin, twin = await self._window(rpm, *rids), await self._window(tpm, *tids)
        headers = self._headers(limits, rwin, twin)
        return Reservation(project_id, model, limits, tokens, headers)

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Correct the token hit from the reservation to the actual count."""
        delta = actual_tokens - reservation.tokens
        ids = ("tpm", reservation.project_id, reservation.model)
        item = self._item(reservation.limits.tpm)
        await self._shared(lambda: self._adjust(item, ids, delta))

    async def close(self) -> None:
        if self.redis is not None:
            try:
                conn = cast(Any, self.redis.bridge).get_connection()
                await conn.aclose()
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
