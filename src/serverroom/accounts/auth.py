"""API-key authentication: who is calling, from the ``Authorization: Bearer`` header.

Modes (``auth.mode``): ``dev`` is always open (any key, everything in ``proj_default``);
``keys`` always requires a valid key; ``auto`` (default) is open until the first project or admin
key exists anywhere in the database, then enforced (permanently: revoking every key does not
re-open the server). A key is checked against the database on every request; with Redis, a
verified key may be cached for ``auth.cache_seconds`` and revocations are published to a Redis
set that every replica checks, so a revoked key fails on the next request everywhere.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import Request
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from serverroom.accounts import keys
from serverroom.accounts.repository import AccountsRepository, KeyInfo
from serverroom.errors import AuthenticationError, PermissionDeniedError
from serverroom.principal import DEFAULT_PROJECT, Principal
from serverroom.settings import Settings

logger = logging.getLogger("serverroom.accounts")

OPEN_PRINCIPAL = Principal(project_id=DEFAULT_PROJECT)
LAST_USED_RESOLUTION = 60  # seconds: ``last_used_at`` is written at most once a minute per key
OPEN_RECHECK = 1.0  # seconds between "does any key exist yet?" checks while ``auto`` is open
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _invalid(shown: str | None) -> AuthenticationError:
    if shown is None:
        return AuthenticationError(
            "You didn't provide an API key. You need to provide your API key in an Authorization"
            " header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )
    return AuthenticationError(
        f"Incorrect API key provided: {keys.display_for_error(shown)}. You can find your API"
        " key in your serverroom project (serverroom keys list).",
    )


def bearer_token(request: HTTPConnection) -> str | None:
    """The raw key from ``Authorization: Bearer <key>``; raises 401 when malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid(header.strip() or "")
    return token


class Authenticator:
    """Turns a request into a ``Principal`` (or a 401)."""

    def __init__(self, settings: Settings, repo: AccountsRepository, redis: Any = None) -> None:
        self.mode = settings.auth.mode
        self.cache_seconds = settings.auth.cache_seconds if redis is not None else 0.0
        self.repo = repo
        self.redis = redis
        self.revoked_key = f"{settings.limits.redis_prefix}:revoked_keys"
        self._enforced = self.mode == "keys"
        self._open_until = 0.0
        self._cache: dict[str, tuple[KeyInfo, float]] = {}

    def warn_if_exposed(self, host: str) -> None:
        if self.mode != "keys" and host not in _LOOPBACK:
            logger.warning(
                "AUTH IS OPEN (auth.mode=%s) while serving on %s: anyone who can reach this"
                " port can use it. Create a key (serverroom keys create) or set"
                " SERVERROOM_AUTH__MODE=keys.",
                self.mode,
                host,
            )

    async def enforced(self) -> bool:
        """Whether keys are required now (``auto`` flips once, when the first key exists)."""
        if self.mode == "dev":
            return False
        if not self._enforced and time.monotonic() >= self._open_until:
            # Keys made by another process (the CLI) are noticed within OPEN_RECHECK seconds,
            # without a database query on every request while the server is open.
            if await self.repo.any_key_exists():
                self._enforced = True
            else:
                self._open_until = time.monotonic() + OPEN_RECHECK
        return self._enforced

    def key_created(self) -> None:
        """A key was just made in this process: ``auto`` mode checks again at once."""
        self._open_until = 0.0

    async def is_revoked_elsewhere(self, key_id: str) -> bool:
        """Whether another replica revoked the key; without an answer from Redis, True, so
        the key is checked against the database (which holds every revocation)."""
        if self.redis is None:
            return False
        try:
            return bool(await self.redis.sismember(self.revoked_key, key_id))
        except RedisError as exc:
            logger.warning("Redis unreachable (%s): keys are checked in the database", exc)
            return True

    async def publish_revocation(self, key_id: str) -> None:
        self._cache = {h: v for h, v in self._cache.items() if v[0].id != key_id}
        if self.redis is not None:
            try:
                await self.redis.sadd(self.revoked_key, key_id)
            except RedisError as exc:  # the database has it; other replicas see it there
                logger.warning("could not publish a revocation to Redis: %s", exc)

    async def _verify(self, token: str) -> KeyInfo:
        # No format gate: a configured bootstrap admin key may have any form (docs/accounts.md).
        digest = keys.hash_key(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            if not await self.is_revoked_elsewhere(cached[0].id):
                return cached[0]
            self._cache.pop(digest, None)
        info = await self.repo.lookup(token)
        if info is None or info.revoked_at is not None:
            raise _invalid(token)
        wall = int(time.time())
        if info.last_used_at is None or wall - info.last_used_at >= LAST_USED_RESOLUTION:
            await self.repo.touch(info.id, wall)
        if self.cache_seconds > 0:
            self._cache[digest] = (info, now + self.cache_seconds)
        return info

    async def principal(self, request: HTTPConnection) -> Principal:
        """The caller of ``request``: the open principal, or the one its key belongs to."""
        if not await self.enforced():
            return OPEN_PRINCIPAL
        token = bearer_token(request)
        if token is None:
            raise _invalid(None)
        info = await self._verify(token)
        if info.is_admin:
            return Principal(project_id=DEFAULT_PROJECT, key_id=info.id, is_admin=True)
        return Principal(project_id=info.project_id or DEFAULT_PROJECT, key_id=info.id)

    async def admin(self, request: Request) -> Principal:
        """The caller, who must hold an admin key (anyone while auth is open)."""
        principal = await self.principal(request)
        if principal.is_admin or not await self.enforced():
            return principal
        raise PermissionDeniedError(
            "You have insufficient permissions for this operation: it requires an admin key"
            " (sk-admin-...).",
            code="insufficient_permissions",
        )
