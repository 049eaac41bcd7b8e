"""Live tests: a real ``serverroom serve`` process on a free port, the bundled model, and the
official SDK configured only through ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for the whole session (bundled model). Slots hold 2048 tokens, so a
    snippet without an output limit cannot ramble for minutes on the tiny model."""
    server = LiveServer(tmp_path_factory.mktemp("live"), args=["--engine.slot_context", "2048"])
    with server.running():
        yield server


@pytest.fixture
def live_env(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    """Point the SDK at the live server through the environment, as a user would."""
    monkeypatch.setenv("OPENAI_BASE_URL", live_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", live_server.api_key)
    return live_server


@pytest.fixture
def live_client(live_env: LiveServer) -> openai.OpenAI:
    return openai.OpenAI()


__all__ = ["LiveServer", "Path", "os"]
