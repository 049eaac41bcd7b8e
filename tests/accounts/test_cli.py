"""The accounts CLI commands, and the open-auth warning."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from serverroom.app import create_app
from serverroom.cli import app
from tests.accounts.conftest import sdk_for
from tests.conftest import fake_settings


def test_cli_projects_keys_tiers_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVERROOM_DATA_DIR", str(tmp_path))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "created project" in run("projects", "create", "cli-proj")
    out = run("keys", "create", "--project", "cli-proj", "--name", "ci")
    key = re.search(r"sk-proj-[A-Za-z0-9_-]+", out)
    assert key is not None
    assert "cli-proj" in run("projects", "list")
    listed = run("keys", "list")
    key_id = re.search(r"key_[0-9a-f]+", listed)
    assert key_id is not None and key.group(0) not in listed
    assert "tier-2" in run("tiers", "set", "--project", "cli-proj", "tier-2")
    assert "tier-5" in run("tiers", "list")

    with TestClient(create_app(fake_settings(tmp_path))) as client:
        reply = sdk_for(client, key.group(0)).chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert reply.usage is not None
        # Another process (the CLI) sees the server's usage row once it is flushed, within
        # ledger.flush_seconds (0.05 s by default).
        deadline = time.monotonic() + 5
        while "gpt-4.1" not in (report := run("usage")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "gpt-4.1" in report and str(reply.usage.prompt_tokens) in report
        run("keys", "revoke", key_id.group(0))
        r = client.get("/v1/models", headers={"Authorization": f"Bearer {key.group(0)}"})
        assert r.status_code == 401
    assert runner.invoke(app, ["projects", "create", "cli-proj"]).exit_code == 1
    assert runner.invoke(app, ["tiers", "set", "--project", "cli-proj", "tier-9"]).exit_code == 1


def test_open_auth_beyond_loopback_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="serverroom.accounts"),
        TestClient(create_app(fake_settings(tmp_path, host="0.0.0.0"))),
    ):
        pass
    assert any("AUTH IS OPEN" in r.message for r in caplog.records)


def test_cli_changes_are_audited_as_the_operators_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVERROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    runner = CliRunner()
    assert runner.invoke(app, ["projects", "create", "audited"]).exit_code == 0
    made = runner.invoke(app, ["keys", "create", "--project", "audited"])
    admin_made = runner.invoke(app, ["keys", "create", "--admin", "--name", "boot"])
    assert made.exit_code == 0 and admin_made.exit_code == 0
    key_id = re.search(r"created key (key_[0-9a-f]+)", made.output)
    admin_value = admin_made.output.strip().splitlines()[-1]
    assert key_id is not None
    assert runner.invoke(app, ["keys", "revoke", key_id.group(1)]).exit_code == 0
    assert runner.invoke(app, ["tiers", "set", "--project", "audited", "tier-2"]).exit_code == 0
    with TestClient(create_app(fake_settings(tmp_path))) as client:
        log = client.get(
            "/v1/organization/audit_logs", headers={"Authorization": f"Bearer {admin_value}"}
        ).json()["data"]
    kinds = [e["type"] for e in reversed(log)]
    assert kinds == [
        "project.created",
        "api_key.created",
        "api_key.created",
        "api_key.deleted",
        "project.updated",
    ]
    for entry in log:
        assert entry["actor"] == {
            "type": "session",
            "session": {"user": {"id": "cli:ops", "email": None}, "ip_address": None},
        }
    assert log[1]["api_key.deleted"]["id"] == key_id.group(1)
    assert log[0]["project.updated"]["changes_requested"] == {"tier": "tier-2"}
