"""Identifiers in the platform's formats (``resp_…``, ``chatcmpl-…``, ``call_…``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str, nbytes: int = 16) -> str:
    """A random id such as ``resp_3f2a…`` (``prefix`` includes its separator)."""
    return prefix + secrets.token_hex(nbytes)


def request_id() -> str:
    return new_id("req_")
