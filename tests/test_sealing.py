"""Sealed reasoning: a key made once per data directory (owner-only), or the configured one
that replicas share; a blob from another key is the platform's 400."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from serverroom.errors import InvalidRequestError
from serverroom.sealing import Sealer


def test_a_key_is_made_once_and_kept(tmp_path: Path) -> None:
    sealed = Sealer(None, tmp_path / "secret.key").seal("thought")
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = Sealer(None, key_file)  # a restart reads the same key
    assert again.open(sealed, item_id="rs_1", param="input[0]") == "thought"


def test_replicas_with_one_secret_open_each_others_blobs(tmp_path: Path) -> None:
    a = Sealer("shared", tmp_path / "a.key")
    b = Sealer("shared", tmp_path / "b.key")
    assert b.open(a.seal("x"), item_id="rs_1", param="p") == "x"
    assert not (tmp_path / "a.key").exists()  # a configured secret writes no file
    other = Sealer("another", tmp_path / "c.key")
    with pytest.raises(InvalidRequestError) as refused:
        other.open(a.seal("x"), item_id="rs_9", param="input[2].encrypted_content")
    assert refused.value.code == "invalid_encrypted_content"
    assert refused.value.param == "input[2].encrypted_content" and "rs_9" in refused.value.message
    with pytest.raises(InvalidRequestError):
        a.open("not a token", item_id="rs_1", param="p")
