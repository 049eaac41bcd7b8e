"""Shared fixtures: an in-process app on the fake engine, and the SDK pointed at it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_postgres_database(prefix: str = "sr_test") -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not running")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for one test."""
    with fresh_postgres_database() as url:
        yield url
