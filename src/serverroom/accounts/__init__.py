"""Accounts: projects, API keys, authentication, the usage ledger, rate limits and usage tiers.

``Accounts`` (``service.py``) assembles the package for one app; ``get_principal`` in
``serverroom.context`` delegates to its ``Authenticator`` and ``AppContext.metering`` is its
``AccountsMetering``. See ``docs/accounts.md``.
"""

from __future__ import annotations

from serverroom.accounts.service import Accounts

__all__ = ["Accounts"]
