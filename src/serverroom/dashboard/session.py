"""Who is signed in to the dashboard: an admin key's login, kept in a sealed cookie.

Signing in takes an admin key (``sk-admin-…``). The cookie holds the key's id, sealed with the
server's secret (``sealing.Sealer``: every replica that shares ``SERVERROOM_SECRET_KEY`` reads
it) and good for ``dashboard.session_hours``; every request checks the key again, so revoking
it ends its sessions at once. While authentication is open (no key exists yet) the dashboard is
open too, as the admin API is: signing in takes no key, and such a session ends when the first
key is made.

Changes (every POST but the sign-in itself) must carry the page's ``X-Dashboard-Token``, a
digest of the cookie that only pages the server rendered for that cookie contain; with the
cookie's ``SameSite=Strict`` no other site can make changes for a signed-in admin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from serverroom.context import AppContext, Ctx
from serverroom.errors import NotFoundError
from serverroom.principal import DEFAULT_PROJECT, Principal

COOKIE = "serverroom_dashboard"
TOKEN_HEADER = "x-dashboard-token"
LOGIN_PATH = "/dashboard/login"


class LoginRequired(Exception):
    """No valid session: pages redirect to the sign-in page (``dashboard.pages``)."""


class ForbiddenChange(Exception):
    """A change without the page's token: refused with a 403."""


@dataclass(frozen=True)
class Session:
    """A signed-in admin: who acts (``principal``, for audit entries) and the page token."""

    principal: Principal
    token: str
    key_name: str  # what the header shows: the key's name, or "open" while auth is open

    @property
    def open(self) -> bool:
        return self.principal.key_id is None


def page_token(cookie: str) -> str:
    return hashlib.sha256(f"dashboard-token:{cookie}".encode()).hexdigest()[:40]


async def sign_in(ctx: AppContext, key: str) -> str | None:
    """A new session cookie for an admin ``key`` (any input while auth is open), else None."""
    accounts = ctx.accounts
    if accounts is None or not await accounts.auth.enforced():
        return ctx.sealer.seal(json.dumps({"key": None}))
    info = await accounts.repo.lookup(key.strip()) if key.strip() else None
    if info is None or not info.is_admin or info.revoked_at is not None:
        return None
    return ctx.sealer.seal(json.dumps({"key": info.id}))


def set_cookie(response: Response, ctx: AppContext, value: str) -> None:
    max_age = int(ctx.settings.dashboard.session_hours * 3600)
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="strict", path="/dashboard"
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/dashboard")


async def current_session(request: Request, ctx: Ctx) -> Session:
    """The signed-in admin; ``LoginRequired`` when there is none (or the key was revoked)."""
    if not ctx.settings.dashboard.enabled:
        raise NotFoundError("The dashboard is turned off on this server (dashboard.enabled).")
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise LoginRequired
    sealed = ctx.sealer.open_fresh(cookie, ctx.settings.dashboard.session_hours * 3600)
    if sealed is None:
        raise LoginRequired
    key_id = json.loads(sealed).get("key")
    address = request.client.host if request.client else None
    session = await _session_for(ctx, key_id, page_token(cookie), address)
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.token.encode()):
            raise ForbiddenChange
    return session


async def _session_for(
    ctx: AppContext, key_id: str | None, token: str, address: str | None
) -> Session:
    accounts = ctx.accounts
    enforced = accounts is not None and await accounts.auth.enforced()
    if key_id is None:
        if enforced:  # an open-mode session ends once keys are required
            raise LoginRequired
        principal = Principal(DEFAULT_PROJECT, is_admin=True, session_ip=address)
        return Session(principal, token, "open")
    if accounts is None:
        raise LoginRequired
    try:
        info = await accounts.repo.get_key(key_id)
    except NotFoundError:
        raise LoginRequired from None
    if not info.is_admin or info.revoked_at is not None:
        raise LoginRequired
    principal = Principal(
        DEFAULT_PROJECT, key_id=info.id, is_admin=True, session_user=info.id, session_ip=address
    )
    return Session(principal, token, info.name or info.redacted_value)


Admin = Annotated[Session, Depends(current_session)]
