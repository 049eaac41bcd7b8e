"""Signing in to the dashboard: admin keys only, sealed cookies, page tokens on changes."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import DashboardSettings
from tests.conftest import fake_settings
from tests.dashboard.conftest import ADMIN_KEY, Browser, admin_headers


def test_pages_redirect_to_sign_in_without_a_session(dash_client: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/usage", "/dashboard/projects", "/dashboard/playground"):
        reply = dash_client.get(path, follow_redirects=False)
        assert reply.status_code == 303, path
        assert reply.headers["location"] == "/dashboard/login"
    htmx = dash_client.get("/dashboard/usage", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/dashboard/login"
    page = dash_client.get("/dashboard/login")
    assert page.status_code == 200 and 'name="key"' in page.text


def test_only_an_admin_key_signs_in(dash_client: TestClient) -> None:
    browser = Browser(dash_client)
    assert browser.sign_in("sk-admin-wrong").status_code == 401
    project = dash_client.post(
        "/v1/organization/projects", json={"name": "p"}, headers=admin_headers()
    ).json()
    key = dash_client.post(
        f"/v1/organization/projects/{project['id']}/api_keys", json={}, headers=admin_headers()
    ).json()["value"]
    assert browser.sign_in(key).status_code == 401  # a project key is not an admin's
    reply = browser.sign_in(ADMIN_KEY)
    assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/usage"
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and ADMIN_KEY.lower() not in cookie
    assert browser.get("/dashboard/usage").status_code == 200


def test_a_change_needs_the_page_token(browser: Browser) -> None:
    reply = browser.client.post("/dashboard/projects", data={"name": "x"})
    assert reply.status_code == 403
    wrong = browser.client.post(
        "/dashboard/projects", data={"name": "x"}, headers={"X-Dashboard-Token": "0" * 40}
    )
    assert wrong.status_code == 403
    projects = browser.client.get("/v1/organization/projects", headers=admin_headers()).json()
    assert all(p["name"] != "x" for p in projects["data"])


def test_revoking_the_admin_key_ends_its_sessions(browser: Browser) -> None:
    made = browser.client.post(
        "/v1/organization/admin_api_keys", json={"name": "ops"}, headers=admin_headers()
    ).json()
    second = Browser(browser.client)
    assert second.sign_in(made["value"]).status_code == 303
    assert second.get("/dashboard/usage").status_code == 200
    gone = browser.client.delete(
        f"/v1/organization/admin_api_keys/{made['id']}", headers=admin_headers()
    )
    assert gone.status_code == 200
    assert second.get("/dashboard/usage").status_code == 303


def test_a_forged_or_stale_cookie_is_no_session(dash_client: TestClient) -> None:
    dash_client.cookies.set("serverroom_dashboard", "not-a-sealed-value", path="/dashboard")
    assert dash_client.get("/dashboard/usage", follow_redirects=False).status_code == 303


def test_sign_out_clears_the_session(browser: Browser) -> None:
    reply = browser.client.post("/dashboard/logout", follow_redirects=False)
    assert reply.status_code == 303
    assert browser.get("/dashboard/usage").status_code == 303


def test_open_auth_opens_the_dashboard_until_a_key_exists(tmp_path: Path) -> None:
    with TestClient(create_app(fake_settings(tmp_path))) as client:
        browser = Browser(client)
        assert "Authentication is open" in client.get("/dashboard/login").text
        assert browser.sign_in("").status_code == 303
        page = browser.get("/dashboard/projects")
        assert page.status_code == 200 and "auth is open" in page.text
        made = browser.post("/dashboard/projects", data={"name": "first"})
        assert made.status_code == 204
        project = made.headers["HX-Redirect"].rsplit("/", 1)[1]
        assert browser.post(f"/dashboard/projects/{project}/keys", data={}).status_code == 200
        # The first key closed authentication: the open session is over.
        assert browser.get("/dashboard/usage").status_code == 303


def test_dashboard_can_be_turned_off(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, dashboard=DashboardSettings(enabled=False))
    with TestClient(create_app(settings)) as client:
        reply = client.get("/dashboard/login")
        assert reply.status_code == 404
        assert client.get("/dashboard/static/vendor/htmx.min.js").status_code == 404
