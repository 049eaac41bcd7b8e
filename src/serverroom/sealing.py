"""Sealing text for clients to hold: reasoning items' ``encrypted_content``, and the
dashboard's login cookie.

A stateless client (``store: false``) that asks for ``reasoning.encrypted_content`` gets its
reasoning sealed, replays it in a later request's input, and serverroom checks that it sealed
it. The key is ``Settings.secret_key``, else one generated once into ``<data_dir>/secret.key``;
replicas must share one (set ``SERVERROOM_SECRET_KEY``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from serverroom.errors import InvalidRequestError


class Sealer:
    """Seals and opens text with the server's key (read or made on first use)."""

    def __init__(self, secret: str | None, key_file: Path) -> None:
        self._secret = secret
        self._key_file = key_file
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    def _cipher(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                secret = self._secret or _key_from_file(self._key_file)
                digest = hashlib.sha256(secret.encode()).digest()
                self._fernet = Fernet(base64.urlsafe_b64encode(digest))
            return self._fernet

    def seal(self, text: str) -> str:
        return self._cipher().encrypt(text.encode()).decode()

    def open(self, token: str, *, item_id: str, param: str) -> str:
        """The sealed text, or the platform's 400 when ``token`` is not one this server made."""
        try:
            return self._cipher().decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise InvalidRequestError(
                f"The encrypted content for item {item_id} could not be verified. Reason:"
                " Encrypted content could not be decrypted or parsed.",
                param=param,
                code="invalid_encrypted_content",
            ) from None

    def open_fresh(self, token: str, max_age: float) -> str | None:
        """The sealed text if this server sealed it less than ``max_age`` seconds ago."""
        try:
            return self._cipher().decrypt(token.encode(), ttl=max(1, int(max_age))).decode()
        except (InvalidToken, ValueError):
            return None


def _key_from_file(path: Path) -> str:
    """The key kept in ``path``, made (readable by its owner only) when there is none."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
