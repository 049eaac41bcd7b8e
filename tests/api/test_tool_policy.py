"""Every tool type of the SDK's ``ToolParam`` union is run or refused, never silently dropped:
a type this server does not run is a 400 naming ``tools[i].type``; with the opt-in ``ignore``
policy it is left out and the response is answered."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.responses import tool_param

from serverroom.api.responses.structured import SUPPORTED_TOOLS
from serverroom.app import create_app
from serverroom.settings import ToolSettings
from tests.conftest import fake_settings


def _sdk_tool_types() -> list[str]:
    """Every ``type`` the installed SDK's ``ToolParam`` union allows."""
    out: list[str] = []
    for member in typing.get_args(tool_param.ToolParam):
        hints = typing.get_type_hints(member)
        kind = hints["type"]
        while typing.get_origin(kind) is not typing.Literal:
            kind = typing.get_args(kind)[0]
        out += list(typing.get_args(kind))
    return out


UNSUPPORTED = [t for t in _sdk_tool_types() if t not in SUPPORTED_TOOLS]


def test_the_sdk_has_tool_types_this_server_refuses() -> None:
    assert "web_search" in UNSUPPORTED and "mcp" not in UNSUPPORTED and len(UNSUPPORTED) > 10


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_an_unsupported_tool_type_is_a_400_naming_it(sdk: openai.OpenAI, kind: str) -> None:
    tools: list[Any] = [
        {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}},
        {"type": kind},
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="gpt-4.1-mini", input="hi", tools=tools)
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "tools[1].type" and error["code"] == "unsupported_value"
    assert repr(kind) in error["message"]


@pytest.fixture
def lenient(tmp_path: Path) -> Iterator[openai.OpenAI]:
    settings = fake_settings(tmp_path, tools=ToolSettings(unsupported="ignore"))
    with TestClient(create_app(settings)) as client:
        yield openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )


def test_the_ignore_policy_leaves_hosted_tools_out(lenient: openai.OpenAI) -> None:
    response = lenient.responses.create(
        model="gpt-4.1-mini",
        input="hi",
        tools=[{"type": "web_search"}, {"type": "image_generation"}],
        tool_choice={"type": "web_search"},  # type: ignore[typeddict-item]
        max_output_tokens=8,
    )
    assert response.status in ("completed", "incomplete")
    assert response.tools == [] and response.tool_choice == "auto"
    assert [item.type for item in response.output] == ["message"]
