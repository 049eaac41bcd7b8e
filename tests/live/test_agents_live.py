"""The OpenAI Agents SDK's agent loop against a real ``serverroom serve`` and the bundled
model: an agent with two function tools and one MCP tool runs to a final answer with
``Runner.run`` and ``Runner.run_streamed``, on the Responses API (the MCP tool hosted: the
server calls it) and on Chat Completions (the MCP server called by the agent itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    HostedMCPTool,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.mcp import MCPServerStreamableHttp, create_static_tool_filter
from pydantic import BaseModel, Field

from tests.hosted.mcp_server import Served, mcp_server
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
ASKED: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    ASKED.append(f"weather:{city}")
    return f"It is sunny and 21 C in {city}."


@function_tool
def get_time(city: str) -> str:
    """Get the local time in a city."""
    ASKED.append(f"time:{city}")
    return f"It is 10:30 in {city}."


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with mcp_server() as running:
        yield running


class Answer(BaseModel):
    """The agent's final answer: one short line (a tiny model's free text may ramble on
    past any output limit; under the schema's pattern it cannot)."""

    answer: str = Field(pattern=r"^[^\n]{1,160}$")


def _agent(
    model: Any, tools: list[Any], servers: list[Any] | None = None, first: str = "required"
) -> Agent[Any]:
    """``first``: the first turn's tool choice (a tool's name, or any tool)."""
    return Agent(
        name="helper",
        output_type=Answer,
        instructions="You help with weather, time and sums. Use the tools, then answer in one"
        " short sentence.",
        tools=[get_weather, get_time, *tools],
        mcp_servers=servers or [],
        model=model,
        # The first turn must call a tool; after it the SDK resets the choice to auto.
        model_settings=ModelSettings(tool_choice=first, max_tokens=300),
    )


def _tool_items(result: Any) -> list[str]:
    return [item.type for item in result.new_items]


def test_responses_mode_runs_and_streams(live_server: LiveServer, served: Served) -> None:
    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=live_server.base_url, api_key=live_server.api_key)
    hosted = HostedMCPTool(
        tool_config={
            "type": "mcp",
            "server_label": "calc",
            "server_url": served.http_url,
            "allowed_tools": ["add"],
            "require_approval": "never",
        }
    )
    agent = _agent(OpenAIResponsesModel("gpt-4.1-mini", client), [hosted])
    # With the hosted tool beside them the tiny model may pick it over the function tools:
    # this run names the function tool it must call first.
    weather = _agent(OpenAIResponsesModel("gpt-4.1-mini", client), [hosted], first="get_weather")
    summing = Agent(
        name="calculator",
        instructions="Add numbers with the add tool.",
        output_type=Answer,
        tools=[hosted],
        model=OpenAIResponsesModel("gpt-4.1-mini", client),
        model_settings=ModelSettings(tool_choice="add", max_tokens=300),
    )

    async def run() -> tuple[Any, Any, list[str], Any]:
        plain = await Runner.run(weather, "What is the weather in Paris?", max_turns=12)
        streamed = Runner.run_streamed(agent, "What time is it in Tokyo?", max_turns=12)
        kinds = [event.type async for event in streamed.stream_events()]
        # The hosted MCP tool: serverroom lists and calls it inside one response.
        summed = await Runner.run(summing, "Add 20 and 22.", max_turns=3)
        return plain, streamed, kinds, summed

    ASKED.clear()
    served.calls.clear()
    plain, streamed, kinds, summed = asyncio.run(run())
    assert isinstance(plain.final_output, Answer) and plain.final_output.answer.strip()
    assert "tool_call_item" in _tool_items(plain) and "tool_call_output_item" in _tool_items(plain)
    assert isinstance(streamed.final_output, Answer)
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert ASKED  # the function tools ran, their outputs went back as input items
    assert served.calls and served.calls[-1]["name"] == "add"
    assert isinstance(summed.final_output, Answer)


def test_chat_completions_mode_runs_and_streams(live_server: LiveServer, served: Served) -> None:
    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=live_server.base_url, api_key=live_server.api_key)

    async def run() -> tuple[Any, Any]:
        only_add = create_static_tool_filter(allowed_tool_names=["add"])
        async with MCPServerStreamableHttp(
            params={"url": served.http_url}, name="calc", tool_filter=only_add
        ) as calc:
            agent = _agent(OpenAIChatCompletionsModel("gpt-4.1-mini", client), [], [calc])
            plain = await Runner.run(agent, "What is the weather in Rome?", max_turns=12)
            streamed = Runner.run_streamed(agent, "What time is it in Oslo?", max_turns=12)
            async for _ in streamed.stream_events():
                pass
            return plain, streamed

    ASKED.clear()
    served.calls.clear()
    plain, streamed = asyncio.run(run())
    assert isinstance(plain.final_output, Answer) and plain.final_output.answer.strip()
    assert isinstance(streamed.final_output, Answer)
    assert "tool_call_output_item" in _tool_items(plain) + _tool_items(streamed)
    assert ASKED or served.calls
