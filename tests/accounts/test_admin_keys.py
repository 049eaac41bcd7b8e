"""Admin API keys over HTTP: created (the value shown once) by an admin, usable at once on the
admin API, listed, retrieved, and deleted (revoked: refused from then on), each change in the
audit log; a project key is not an admin key here."""

from __future__ import annotations

from tests.accounts.conftest import Admin, AppFactory


def test_admin_keys_are_managed_over_http(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    made = admin.post("/v1/organization/admin_api_keys", {"name": "ops"})
    assert made["object"] == "organization.admin_api_key" and made["name"] == "ops"
    value = made["value"]
    assert value.startswith("sk-admin-") and made["redacted_value"] != value
    theirs = {"Authorization": f"Bearer {value}"}
    assert client.get("/v1/organization/projects", headers=theirs).status_code == 200
    listed = admin.get("/v1/organization/admin_api_keys")["data"]
    assert made["id"] in [k["id"] for k in listed] and all("value" not in k for k in listed)
    assert admin.get(f"/v1/organization/admin_api_keys/{made['id']}")["name"] == "ops"
    gone = client.delete(f"/v1/organization/admin_api_keys/{made['id']}", headers=admin.headers)
    assert gone.json() == {
        "object": "organization.admin_api_key.deleted",
        "id": made["id"],
        "deleted": True,
    }
    assert client.get("/v1/organization/projects", headers=theirs).status_code == 401
    missing = client.get(f"/v1/organization/admin_api_keys/{made['id']}", headers=admin.headers)
    assert missing.status_code == 404
    types = [e["type"] for e in admin.get("/v1/organization/audit_logs")["data"][:2]]
    assert types == ["api_key.deleted", "api_key.created"]


def test_a_project_key_is_not_an_admin_key(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    key_id, key = admin.key(admin.project("p"))
    reply = client.get(f"/v1/organization/admin_api_keys/{key_id}", headers=admin.headers)
    assert reply.status_code == 404
    reply = client.post(
        "/v1/organization/admin_api_keys", json={}, headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 403
