"""Fixtures for the accounts tests: an in-process app with a bootstrap admin key, helpers to
create projects and keys through the admin API, and a tier ladder written per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import AuthSettings, LimitsSettings, Settings
from tests.conftest import fake_settings

ADMIN_KEY = "sk-admin-" + "A" * 40


def write_tiers(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class Admin:
    """The admin API of one in-process app."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def get(self, url: str, **params: Any) -> Any:
        r = self.client.get(url, headers=self.headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, url: str, body: dict[str, Any]) -> Any:
        r = self.client.post(url, headers=self.headers, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def project(self, name: str) -> str:
        return str(self.post("/v1/organization/projects", {"name": name})["id"])

    def key(self, project_id: str, name: str = "") -> tuple[str, str]:
        body = self.post(f"/v1/organization/projects/{project_id}/api_keys", {"name": name})
        return str(body["id"]), str(body["value"])

    def revoke(self, project_id: str, key_id: str) -> None:
        r = self.client.delete(
            f"/v1/organization/projects/{project_id}/api_keys/{key_id}", headers=self.headers
        )
        assert r.status_code == 200, r.text


def sdk_for(client: TestClient, key: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key, base_url="http://testserver/v1", http_client=client, max_retries=max_retries
    )


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Start an app with accounts settings; ``make_app(limits=..., auth=...)``."""
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> TestClient:
        overrides.setdefault("auth", AuthSettings(admin_key=ADMIN_KEY))  # type: ignore[arg-type]
        overrides.setdefault("limits", LimitsSettings())  # type: ignore[call-arg]
        settings: Settings = fake_settings(tmp_path, **overrides)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def app_client(make_app: AppFactory) -> TestClient:
    return make_app()


@pytest.fixture
def admin(app_client: TestClient) -> Admin:
    return Admin(app_client)
