"""Who may use the admin API: the dependencies its routes take (an admin key; anyone while
authentication is open), and the accounts service they work on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serverroom.accounts.service import Accounts
from serverroom.context import Ctx
from serverroom.errors import ServiceUnavailableError
from serverroom.principal import Principal


async def accounts_of(ctx: Ctx) -> Accounts:
    if ctx.accounts is None:
        raise ServiceUnavailableError("Accounts are not enabled on this server.")
    return ctx.accounts


AppAccounts = Annotated[Accounts, Depends(accounts_of)]


async def require_admin(request: Request, accounts: AppAccounts) -> Principal:
    return await accounts.auth.admin(request)


AdminCaller = Annotated[Principal, Depends(require_admin)]  # cached: checked once per request
