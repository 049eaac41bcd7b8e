"""Function calling in Chat Completions against the fake engine (real grammar constraint)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from serverroom.engine.base import GenerationRequest
from serverroom.engine.fake import FakeEngine

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
MESSAGES: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


def call_text(name: str, args: dict[str, Any]) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(args)}}}\n</tool_call>'


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the fake engine 'want' to write the given text (the grammar still decides)."""
    script: list[str] = []

    def reply_for(self: FakeEngine, request: GenerationRequest) -> bytes:
        return script[0].encode() if script else b"Plain answer."

    monkeypatch.setattr(FakeEngine, "reply_for", reply_for)
    return script


def model_id(sdk: openai.OpenAI) -> str:
    return sdk.models.list().data[0].id


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_call(sdk: openai.OpenAI, choice: Any) -> None:
    reply = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER], tool_choice=choice
    )
    c = reply.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.content is None
    assert c.message.tool_calls and len(c.message.tool_calls) == 1
    call = c.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] in ("c", "f")


def test_named_function_among_several(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=MESSAGES,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_time"]
    assert isinstance(json.loads(calls[0].function.arguments), dict)


def test_auto_text(sdk: openai.OpenAI, scripted: list[str]) -> None:
    reply = sdk.chat.completions.create(model=model_id(sdk), messages=MESSAGES, tools=[WEATHER])
    c = reply.choices[0]
    assert c.finish_reason == "stop" and c.message.content == "Plain answer."
    assert not c.message.tool_calls


def test_auto_call(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(call_text("get_weather", {"city": "Paris", "unit": "c"}))
    reply = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER, TIME], tool_choice="auto"
    )
    c = reply.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.tool_calls is not None
    assert json.loads(c.message.tool_calls[0].function.arguments) == {"city": "Paris", "unit": "c"}


def test_none_never_calls(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append("Just text.")
    reply = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER], tool_choice="none"
    )
    assert reply.choices[0].message.content == "Just text."
    assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls


def test_parallel_calls(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(
        call_text("get_weather", {"city": "Paris", "unit": "c"})
        + "\n"
        + call_text("get_time", {"tz": "Europe/Paris"})
    )
    reply = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER, TIME], tool_choice="required"
    )
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.id for c in calls}) == 2


def test_parallel_disabled_gives_one_call(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(
        call_text("get_weather", {"city": "Paris", "unit": "c"})
        + "\n"
        + call_text("get_time", {"tz": "UTC"})
    )
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=MESSAGES,
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    calls = reply.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]


def collect_stream(stream: Any) -> tuple[dict[int, dict[str, Any]], str | None, str]:
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    content = ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for tc in delta.tool_calls or []:
            assert tc.index is not None
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id is not None:
                assert entry["id"] is None, "id must come once"
                entry["id"] = tc.id
                assert tc.type == "function"
            if tc.function and tc.function.name is not None:
                assert entry["name"] is None, "name must come once"
                entry["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                entry["arguments"] += tc.function.arguments
    return calls, finish, content


def test_streamed_parallel_calls(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(
        call_text("get_weather", {"city": "Paris", "unit": "c"})
        + "\n"
        + call_text("get_time", {"tz": "UTC"})
    )
    stream = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER, TIME], stream=True
    )
    calls, finish, content = collect_stream(stream)
    assert finish == "tool_calls" and content == ""
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}
    assert json.loads(calls[1]["arguments"]) == {"tz": "UTC"}
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_streamed_auto_text(sdk: openai.OpenAI, scripted: list[str]) -> None:
    stream = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER], stream=True
    )
    calls, finish, content = collect_stream(stream)
    assert calls == {} and finish == "stop" and content == "Plain answer."


def test_sdk_stream_helper_with_tools(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.stream(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER], tool_choice="required"
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert calls[0].id.startswith("call_") and calls[0].id.count("call_") == 1
    assert final.choices[0].finish_reason == "tool_calls"


def test_round_trip(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(call_text("get_weather", {"city": "Paris", "unit": "c"}))
    first = sdk.chat.completions.create(model=model_id(sdk), messages=MESSAGES, tools=[WEATHER])
    message = first.choices[0].message
    assert message.tool_calls
    scripted[0] = "It is 21 degrees in Paris."
    history: Any = [
        *MESSAGES,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": '{"temp": 21}'},
    ]
    second = sdk.chat.completions.create(model=model_id(sdk), messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 21 degrees in Paris."
    assert second.choices[0].finish_reason == "stop"


class GetWeather(BaseModel):
    city: str
    unit: str


def test_pydantic_function_tool_parse(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.parse(
        model=model_id(sdk),
        messages=MESSAGES,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required",
    )
    calls = completion.choices[0].message.tool_calls or []
    assert calls and isinstance(calls[0].function.parsed_arguments, GetWeather)


def test_tool_format_with_response_format(sdk: openai.OpenAI, scripted: list[str]) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    scripted.append('{"answer": "sunny"}')
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=MESSAGES,
        tools=[WEATHER],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": schema, "strict": True},
        },
    )
    assert set(json.loads(reply.choices[0].message.content or "")) == {"answer"}


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "strict": True,
                            "parameters": {
                                "type": "object",
                                "properties": {"a": {"type": "string"}},
                            },
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
        ),
    ],
)
def test_tool_errors(sdk: openai.OpenAI, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model=model_id(sdk), messages=MESSAGES, **kwargs)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param


def test_repeated_call_is_dropped_and_stops(sdk: openai.OpenAI, scripted: list[str]) -> None:
    one = call_text("get_weather", {"city": "Paris", "unit": "c"})
    scripted.append("\n".join([one, one, one, one]))
    reply = sdk.chat.completions.create(
        model=model_id(sdk), messages=MESSAGES, tools=[WEATHER], tool_choice="required"
    )
    assert len(reply.choices[0].message.tool_calls or []) == 1
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.usage is not None and reply.usage.completion_tokens < 2 * len(one) + 5
