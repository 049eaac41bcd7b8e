"""Responses API: text.format and function calling (flat tools) on the fake engine."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from serverroom.engine.base import GenerationRequest
from serverroom.engine.fake import FakeEngine
from tests.constraints.corpus import SCHEMAS, UNSUPPORTED

MODEL = "gpt-4.1"
PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER: Any = {"type": "function", "name": "get_weather", "parameters": PARAMS, "strict": True}
TIME: Any = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    "strict": False,
}


def call_text(name: str, args: dict[str, Any]) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(args)}}}\n</tool_call>'


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    script: list[str] = []

    def reply_for(self: FakeEngine, request: GenerationRequest) -> bytes:
        return script[0].encode() if script else b"Plain answer."

    monkeypatch.setattr(FakeEngine, "reply_for", reply_for)
    return script


@pytest.mark.parametrize("name", ["recursive_tree", "format_uuid", "ui_component", "all_scalars"])
def test_text_format(sdk: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    response = sdk.responses.create(
        model=MODEL,
        input="fill it",
        text={"format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}},
    )
    assert response.status == "completed"
    value = json.loads(response.output_text)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(value)


def test_text_format_unsupported(sdk: openai.OpenAI) -> None:
    schema, fragment = UNSUPPORTED["one_of"]
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(
            model=MODEL,
            input="x",
            text={"format": {"type": "json_schema", "name": "X", "schema": schema, "strict": True}},
        )
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "text.format"
    assert fragment in body["message"]


def test_text_format_truncated_is_incomplete(sdk: openai.OpenAI) -> None:
    schema = SCHEMAS["math_reasoning"]
    response = sdk.responses.create(
        model=MODEL,
        input="x",
        max_output_tokens=16,
        text={"format": {"type": "json_schema", "name": "m", "schema": schema, "strict": True}},
    )
    assert response.status == "incomplete"


class Person(BaseModel):
    name: str
    age: int


def test_responses_parse(sdk: openai.OpenAI) -> None:
    response = sdk.responses.parse(model=MODEL, input="a person", text_format=Person)
    assert isinstance(response.output_parsed, Person)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "get_weather"}])
def test_forced_function_call(sdk: openai.OpenAI, choice: Any) -> None:
    response = sdk.responses.create(
        model=MODEL, input="weather?", tools=[WEATHER, TIME], tool_choice=choice
    )
    assert response.status == "completed"
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and all(c.id and c.id.startswith("fc_") for c in calls)
    assert all(c.call_id.startswith("call_") and c.status == "completed" for c in calls)
    if isinstance(choice, dict):
        assert [c.name for c in calls] == ["get_weather"]
        Draft202012Validator(PARAMS).validate(json.loads(calls[0].arguments))


def test_auto_text_and_none(sdk: openai.OpenAI, scripted: list[str]) -> None:
    for choice in ("auto", "none"):
        response = sdk.responses.create(
            model=MODEL, input="hi", tools=[WEATHER], tool_choice=choice
        )
        assert response.output_text == "Plain answer."
        assert [item.type for item in response.output] == ["message"]


def test_parallel_calls_streamed(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(
        call_text("get_weather", {"city": "Paris", "unit": "c"})
        + "\n"
        + call_text("get_time", {"tz": "UTC"})
    )
    with sdk.responses.stream(model=MODEL, input="both", tools=[WEATHER, TIME]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.count("response.function_call_arguments.done") == 2
    assert kinds.count("response.output_item.added") == 2
    assert "response.function_call_arguments.delta" in kinds
    calls = [item for item in final.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].arguments) == {"tz": "UTC"}


def test_round_trip_previous_response_id(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append(call_text("get_weather", {"city": "Paris", "unit": "c"}))
    first = sdk.responses.create(model=MODEL, input="weather in Paris?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    scripted[0] = "It is sunny."
    second = sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "It is sunny."


def test_round_trip_manual_items(sdk: openai.OpenAI, scripted: list[str]) -> None:
    scripted.append("Done.")
    response = sdk.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris", "unit": "c"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert response.output_text == "Done."
