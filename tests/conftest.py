"""Shared fixtures: an in-process app on the fake engine, and the SDK pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.settings import EngineSettings, Settings


def fake_settings(tmp_path: Path, **overrides: object) -> Settings:
    engine = overrides.pop("engine", None) or EngineSettings(kind="fake")
    return Settings(data_dir=tmp_path, engine=engine, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fake_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A TestClient over an app with the fake engine and a fresh SQLite database."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def sdk(client: TestClient) -> openai.OpenAI:
    """The official SDK, talking to the in-process app."""
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://testserver/v1",
        http_client=client,
        max_retries=0,
    )
