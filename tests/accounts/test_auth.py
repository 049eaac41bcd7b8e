"""Authentication: modes, 401 for every bad-key case, revocation, admin-only endpoints."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.settings import AuthSettings
from tests.accounts.conftest import ADMIN_KEY, Admin, AppFactory, sdk_for

CHAT = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def _chat(client: TestClient, key: str) -> openai.types.chat.ChatCompletion:
    return sdk_for(client, key).chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )


def _assert_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert r.status_code == 401, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None


def test_auto_mode_is_open_until_the_first_key(client: TestClient, sdk: openai.OpenAI) -> None:
    # The shared fixture: no admin key, no project keys: any key works.
    assert _chat(client, "sk-whatever").choices
    assert (
        sdk.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        ).usage
        is not None
    )


def test_auto_mode_enforces_once_a_key_exists(make_app: AppFactory) -> None:
    client = make_app(auth=AuthSettings())
    assert _chat(client, "sk-anything").id  # open
    admin_free = client.post("/v1/organization/projects", json={"name": "p"})
    assert admin_free.status_code == 200  # open mode: anyone is admin
    project_id = admin_free.json()["id"]
    created = client.post(f"/v1/organization/projects/{project_id}/api_keys", json={})
    key = created.json()["value"]
    assert key.startswith("sk-proj-") and len(key) > 40
    with pytest.raises(openai.AuthenticationError):
        _chat(client, "sk-anything")
    assert _chat(client, key).id


def test_bad_keys_get_401(app_client: TestClient, admin: Admin) -> None:
    project = admin.project("alpha")
    key_id, key = admin.key(project)
    assert _chat(app_client, key).id
    # missing: the SDK itself refuses to build a client without a key
    with pytest.raises(openai.OpenAIError):
        openai.OpenAI(api_key=None, base_url="http://testserver/v1", http_client=app_client)
    _assert_401(app_client, {})  # missing header, raw
    _assert_401(app_client, {"Authorization": "Basic abc"})  # malformed scheme
    _assert_401(app_client, {"Authorization": "Bearer"})  # malformed: empty
    _assert_401(app_client, {"Authorization": "Bearer sk-test"})  # malformed key
    _assert_401(app_client, {"Authorization": "Bearer sk-proj-" + "x" * 43})  # unknown
    with pytest.raises(openai.AuthenticationError) as info:
        _chat(app_client, "sk-proj-" + "y" * 43)
    assert info.value.code == "invalid_api_key"
    admin.revoke(project, key_id)
    _assert_401(app_client, {"Authorization": f"Bearer {key}"})  # revoked
    with pytest.raises(openai.AuthenticationError):
        _chat(app_client, key)


def test_dev_mode_accepts_anything(make_app: AppFactory) -> None:
    client = make_app(auth=AuthSettings(mode="dev", admin_key=ADMIN_KEY))  # type: ignore[arg-type]
    assert _chat(client, "sk-whatever").id
    r = client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 200


def test_keys_mode_enforces_without_any_key(make_app: AppFactory) -> None:
    client = make_app(auth=AuthSettings(mode="keys"))
    with pytest.raises(openai.AuthenticationError):
        _chat(client, "sk-test")


def test_admin_endpoints_need_an_admin_key(app_client: TestClient, admin: Admin) -> None:
    project = admin.project("beta")
    _, key = admin.key(project)
    r = app_client.get("/v1/organization/projects", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "insufficient_permissions"
    r = app_client.get("/v1/organization/projects")
    assert r.status_code == 401
    listed = admin.get("/v1/organization/projects")
    assert listed["object"] == "list"
    assert {p["name"] for p in listed["data"]} >= {"beta", "Default project"}
    keys = admin.get(f"/v1/organization/projects/{project}/api_keys")
    assert keys["data"][0]["redacted_value"].startswith("sk-proj-")
    assert "value" not in keys["data"][0]
    assert keys["data"][0]["last_used_at"] is not None
    assert key not in str(keys)


def test_every_admin_route_refuses_a_project_key(app_client: TestClient, admin: Admin) -> None:
    _, key = admin.key(admin.project("gamma"))
    paths = app_client.get("/openapi.json").json()["paths"]
    routes = [(p, m) for p, ops in paths.items() if "/organization/" in p for m in ops]
    assert len(routes) == 19  # with spend_limit, archive, audit_logs and admin_api_keys
    for path, method in routes:
        url = path.replace("{project_id}", "proj_x").replace("{key_id}", "key_x")
        r = app_client.request(method, url, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403, (method, url, r.text)


def test_bootstrap_admin_key_of_any_form_works(make_app: AppFactory) -> None:
    """The start-up warning says a non ``sk-admin-`` bootstrap key is used anyway: it must work."""
    own = "my-own-admin-secret"
    client = make_app(auth=AuthSettings(admin_key=own))  # type: ignore[arg-type]
    r = client.get("/v1/organization/projects", headers={"Authorization": f"Bearer {own}"})
    assert r.status_code == 200, r.text
    _assert_401(client, {"Authorization": "Bearer my-own-admin-secreT"})
