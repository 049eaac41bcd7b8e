"""Function calling with the real bundled model through the SDK (Chat Completions)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

pytestmark = pytest.mark.live

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": PARAMS,
        "strict": True,
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris in celsius?"}]
MAX_TOKENS = 80


def model(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def check_call(name: str, arguments: str) -> None:
    schema = {"get_weather": PARAMS, "get_time": TIME["function"]["parameters"]}[name]
    Draft202012Validator(schema).validate(json.loads(arguments))


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_call_live(live_client: openai.OpenAI, choice: Any) -> None:
    reply = live_client.chat.completions.create(
        model=model(live_client),
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice=choice,
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    c = reply.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert c.message.content is None and c.message.tool_calls
    for call in c.message.tool_calls:
        assert call.id.startswith("call_")
        check_call(call.function.name, call.function.arguments)
    if isinstance(choice, dict):
        assert {call.function.name for call in c.message.tool_calls} == {"get_weather"}


def test_streamed_call_live(live_client: openai.OpenAI) -> None:
    stream = live_client.chat.completions.create(
        model=model(live_client),
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for tc in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += (tc.function.name if tc.function else None) or ""
            entry["arguments"] += (tc.function.arguments if tc.function else None) or ""
    assert finish == "tool_calls" and calls
    for entry in calls.values():
        assert entry["id"].startswith("call_") and entry["id"].count("call_") == 1
        assert entry["name"] == "get_weather"
        check_call(entry["name"], entry["arguments"])


def test_auto_and_none_live(live_client: openai.OpenAI) -> None:
    for choice in ("auto", "none"):
        reply = live_client.chat.completions.create(
            model=model(live_client),
            messages=ASK,
            tools=[WEATHER],
            tool_choice=choice,
            max_tokens=40,
            temperature=0,
        )
        c = reply.choices[0]
        if c.message.tool_calls:
            assert choice == "auto" and c.finish_reason in ("tool_calls", "length")
            for call in c.message.tool_calls:
                if c.finish_reason == "tool_calls":
                    check_call(call.function.name, call.function.arguments)
        else:
            assert c.message.content and c.finish_reason in ("stop", "length")


def test_parallel_calls_live(live_client: openai.OpenAI) -> None:
    reply = live_client.chat.completions.create(
        model=model(live_client),
        messages=[{"role": "user", "content": "Weather and local time in Paris and in Rome?"}],
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=True,
        max_tokens=160,
        temperature=0,
    )
    c = reply.choices[0]
    assert c.message.tool_calls
    ids = [call.id for call in c.message.tool_calls]
    assert len(set(ids)) == len(ids)
    if c.finish_reason == "tool_calls":
        for call in c.message.tool_calls:
            check_call(call.function.name, call.function.arguments)


def test_round_trip_live(live_client: openai.OpenAI) -> None:
    first = live_client.chat.completions.create(
        model=model(live_client),
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    message = first.choices[0].message
    assert message.tool_calls
    history: Any = [
        *ASK,
        message.model_dump(exclude_none=True),
        *(
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": '{"temperature": 21, "sky": "sunny"}',
            }
            for call in message.tool_calls
        ),
    ]
    second = live_client.chat.completions.create(
        model=model(live_client),
        messages=history,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=40,
        temperature=0,
    )
    answer = second.choices[0]
    assert answer.message.content and not answer.message.tool_calls


class GetWeather(BaseModel):
    city: str
    unit: str


def test_pydantic_tool_parse_live(live_client: openai.OpenAI) -> None:
    completion = live_client.chat.completions.parse(
        model=model(live_client),
        messages=ASK,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required",
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    calls = completion.choices[0].message.tool_calls or []
    assert calls and isinstance(calls[0].function.parsed_arguments, GetWeather)


def test_responses_function_call_live(live_client: openai.OpenAI) -> None:
    tool: Any = {**WEATHER["function"], "type": "function"}
    first = live_client.responses.create(
        model=model(live_client),
        input="What is the weather in Paris in celsius?",
        tools=[tool],
        tool_choice="required",
        max_output_tokens=MAX_TOKENS,
        temperature=0,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert first.status == "completed" and calls
    for call in calls:
        assert call.id and call.id.startswith("fc_") and call.call_id.startswith("call_")
        check_call(call.name, call.arguments)
    second = live_client.responses.create(
        model=model(live_client),
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": c.call_id, "output": "21 C, sunny"}
            for c in calls
        ],
        tools=[tool],
        tool_choice="none",
        max_output_tokens=40,
        temperature=0,
    )
    assert second.output_text


def test_responses_stream_function_call_live(live_client: openai.OpenAI) -> None:
    tool: Any = {**WEATHER["function"], "type": "function"}
    with live_client.responses.stream(
        model=model(live_client),
        input="What is the weather in Rome in celsius?",
        tools=[tool],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=MAX_TOKENS,
        temperature=0,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds
    call = next(item for item in final.output if item.type == "function_call")
    check_call(call.name, call.arguments)


def test_forced_single_intent_calls_are_short_and_valid(live_client: openai.OpenAI) -> None:
    """tool_choice=required with one strict tool, 20 single-intent prompts: each reply ends
    after a call or few (it used to chain up to 8 invented ones, or run an argument to the
    reply limit), with arguments that follow the schema."""
    tool = {
        "type": "function",
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    cities = [
        "Rome",
        "Paris",
        "Tokyo",
        "Lima",
        "Oslo",
        "Cairo",
        "Delhi",
        "Berlin",
        "Madrid",
        "Sydney",
    ]
    cities += [
        "Toronto",
        "Nairobi",
        "Seoul",
        "Dublin",
        "Lisbon",
        "Vienna",
        "Prague",
        "Athens",
        "Havana",
        "Quito",
    ]
    calls_per_reply = []
    for city in cities:
        response = live_client.responses.create(
            model="gpt-4.1",
            input=f"What is the weather in {city}?",
            tools=[tool],  # type: ignore[list-item]
            tool_choice="required",
        )
        calls = [item for item in response.output if item.type == "function_call"]
        assert calls and response.usage is not None
        assert response.usage.output_tokens <= 512  # the default reply limit holds
        for call in calls:
            arguments = json.loads(call.arguments)
            assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
            assert len(arguments["city"]) <= 256
        calls_per_reply.append(len(calls))
    # Three runs before the end-of-call rule: 2.65 to 3.65 calls a reply; after: 1.0 to 1.55.
    assert sum(calls_per_reply) / len(cities) <= 2.0, calls_per_reply
