"""Fixtures for the dashboard tests: an in-process app with a bootstrap admin key and a
browser-like client that signs in and sends the page token with its changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import AuthSettings, Settings
from tests.conftest import fake_settings

ADMIN_KEY = "sk-admin-" + "D" * 40
TOKEN = re.compile(r'<meta name="dashboard-token" content="([0-9a-f]*)">')


class Browser:
    """The dashboard as a signed-in admin's browser sees it (cookies kept by the client)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token = ""

    def sign_in(self, key: str = ADMIN_KEY) -> httpx.Response:
        reply = self.client.post("/dashboard/login", data={"key": key}, follow_redirects=False)
        if reply.status_code == 303:
            self.get("/dashboard/usage")  # a page: its token signs later changes
        return reply

    def get(self, url: str, **params: Any) -> httpx.Response:
        reply = self.client.get(url, params=params, follow_redirects=False)
        found = TOKEN.search(reply.text)
        if found and found.group(1):
            self.token = found.group(1)
        return reply

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        headers = {"X-Dashboard-Token": self.token, "HX-Request": "true"}
        return self.client.post(url, data=data, headers=headers, follow_redirects=False, **kw)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def dash_settings(tmp_path: Path) -> Settings:
    return fake_settings(tmp_path, auth=AuthSettings(admin_key=ADMIN_KEY))  # type: ignore[arg-type]


@pytest.fixture
def dash_client(dash_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dash_settings)) as client:
        yield client


@pytest.fixture
def browser(dash_client: TestClient) -> Browser:
    signed = Browser(dash_client)
    assert signed.sign_in().status_code == 303
    return signed
