"""API key material: generation, hashing, redaction and format checks.

A key is shown once, at creation; only its SHA-256 hash and a redacted display value are stored.
Project keys look like ``sk-proj-<43 url-safe chars>``, admin keys like ``sk-admin-<…>`` (a
configured bootstrap admin key may have any form).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PROJECT_PREFIX = "sk-proj-"
ADMIN_PREFIX = "sk-admin-"
_ENTROPY_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: ``value`` is shown once, the rest is stored."""

    value: str
    key_hash: str
    redacted: str


def hash_key(value: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(value.encode()).hexdigest()


def redact(value: str) -> str:
    """A display form such as ``sk-proj-abc…wxyz`` that identifies but does not reveal a key."""
    prefix = ADMIN_PREFIX if value.startswith(ADMIN_PREFIX) else PROJECT_PREFIX
    body = value[len(prefix) :] if value.startswith(prefix) else value
    return f"{prefix}{body[:3]}...{body[-4:]}"


def generate(admin: bool = False) -> NewKey:
    """A new high-entropy key."""
    value = (ADMIN_PREFIX if admin else PROJECT_PREFIX) + secrets.token_urlsafe(_ENTROPY_BYTES)
    return NewKey(value=value, key_hash=hash_key(value), redacted=redact(value))


def display_for_error(value: str) -> str:
    """How a rejected key is echoed in a 401 message (``sk-abc*****wxyz``)."""
    if len(value) <= 8:
        return "*" * len(value)
    return f"{value[:6]}{'*' * min(20, len(value) - 10)}{value[-4:]}"
