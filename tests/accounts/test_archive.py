"""Archiving a project: its keys stop working at once, it takes no new keys, it leaves the
project list (unless archived ones are asked for), and the audit log says who archived it."""

from __future__ import annotations

import openai
import pytest

from tests.accounts.conftest import Admin, AppFactory, sdk_for


def test_an_archived_project_is_closed(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    project = admin.project("old")
    _, key = admin.key(project)
    sdk_for(client, key).models.list()
    archived = admin.post(f"/v1/organization/projects/{project}/archive", {})
    assert archived["status"] == "archived" and archived["archived_at"]
    with pytest.raises(openai.AuthenticationError):
        sdk_for(client, key).models.list()
    reply = client.post(
        f"/v1/organization/projects/{project}/api_keys", json={}, headers=admin.headers
    )
    assert reply.status_code == 400 and "archived" in reply.json()["error"]["message"]
    listed = admin.get("/v1/organization/projects")["data"]
    assert project not in [p["id"] for p in listed]
    everything = admin.get("/v1/organization/projects", include_archived="true")["data"]
    assert project in [p["id"] for p in everything]
    again = admin.post(f"/v1/organization/projects/{project}/archive", {})  # idempotent
    assert again["archived_at"] == archived["archived_at"]
    entries = admin.get("/v1/organization/audit_logs", **{"event_types[]": "project.archived"})[
        "data"
    ]
    assert len(entries) == 1 and entries[0]["project"]["id"] == project


def test_the_default_project_stays(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    default = next(
        p["id"]
        for p in admin.get("/v1/organization/projects")["data"]
        if p["name"] == "Default project"
    )
    reply = client.post(
        f"/v1/organization/projects/{default}/archive", json={}, headers=admin.headers
    )
    assert reply.status_code == 400
