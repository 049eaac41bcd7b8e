"""The SDK's deferred pydantic models are built at start-up, not on the first request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from openai.types.responses import Response, ResponseTextDeltaEvent

from serverroom.warmup import build_sdk_types


def test_sdk_types_are_built_once_the_app_has_started(client: TestClient) -> None:
    assert Response.__pydantic_complete__
    assert ResponseTextDeltaEvent.__pydantic_complete__
    assert build_sdk_types() == 0  # nothing left to build
