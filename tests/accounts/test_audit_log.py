"""The audit log over HTTP (``/v1/organization/audit_logs``): key creation and revocation,
project creation and changes (tier, spend limit) are recorded with the admin key that made
them, listed newest first, filtered and paged as on the platform."""

from __future__ import annotations

from typing import Any

from tests.accounts.conftest import Admin, AppFactory


def _log(admin: Admin, **params: Any) -> dict[str, Any]:
    return admin.get("/v1/organization/audit_logs", **params)  # type: ignore[no-any-return]


def test_key_and_project_changes_are_audited(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    project = admin.project("audited")
    key_id, _ = admin.key(project, name="ci")
    admin.revoke(project, key_id)
    admin.post(f"/v1/organization/projects/{project}/spend_limit", {"monthly_usd": 5})
    entries = _log(admin)["data"]
    assert [e["type"] for e in entries] == [
        "project.updated",
        "api_key.deleted",
        "api_key.created",
        "project.created",
    ]
    updated, deleted, created, made = entries
    assert updated["project.updated"]["changes_requested"] == {"monthly_spend_limit_usd": 5.0}
    assert deleted["api_key.deleted"]["id"] == key_id
    assert created["api_key.created"] == {
        "id": key_id,
        "data": {"name": "ci", "scopes": ["api.all"]},
    }
    assert made["project"] == {"id": project, "name": "audited"}
    actor = created["actor"]
    assert actor["type"] == "api_key" and actor["api_key"]["id"].startswith("key_")
    assert all(e["id"].startswith("audit_log-") and e["effective_at"] > 0 for e in entries)


def test_filters_and_pages(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    one, two = admin.project("one"), admin.project("two")
    for project in (one, two, one):
        admin.key(project)
    keys = _log(admin, **{"event_types[]": "api_key.created"})
    assert len(keys["data"]) == 3
    mine = _log(admin, **{"event_types[]": "api_key.created", "project_ids[]": one})
    assert {e["project"]["id"] for e in mine["data"]} == {one} and len(mine["data"]) == 2
    first = _log(admin, limit=2)
    assert first["has_more"] and len(first["data"]) == 2
    rest = _log(admin, limit=10, after=first["last_id"])
    seen = [e["id"] for e in first["data"] + rest["data"]]
    assert len(seen) == len(set(seen)) == 5 and not rest["has_more"]
    later = _log(admin, **{"effective_at[gt]": str(10**10)})
    assert later["data"] == []


def test_an_unknown_event_type_is_a_400(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    reply = client.get(
        "/v1/organization/audit_logs",
        params={"event_types[]": "user.deleted"},
        headers=admin.headers,
    )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "event_types"
