"""Structured outputs through the SDK against the fake engine (real llguidance constraint)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from tests.constraints.corpus import SCHEMAS, UNSUPPORTED

MODEL = "serverroom-test"


def model_id(sdk: openai.OpenAI) -> str:
    return sdk.models.list().data[0].id


def validate(schema: dict[str, Any], text: str) -> Any:
    value = json.loads(text)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(value)
    return value


def schema_format(name: str, schema: dict[str, Any], strict: bool = True) -> Any:
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_corpus_output_validates(sdk: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "Fill in the form."}],
        response_format=schema_format(name, schema),
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    validate(schema, choice.message.content or "")


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_schema_is_400(sdk: openai.OpenAI, name: str) -> None:
    schema, fragment = UNSUPPORTED[name]
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model=model_id(sdk),
            messages=[{"role": "user", "content": "hi"}],
            response_format=schema_format("X", schema),
        )
    body = info.value.body
    assert isinstance(body, dict)
    assert body["param"] == "response_format"
    assert body["message"].startswith("Invalid schema for response_format 'X': In context=")
    assert fragment in body["message"]


def test_unsupported_is_fine_when_not_strict(sdk: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 2}},
        "required": ["a"],
    }
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "hi"}],
        response_format=schema_format("loose", schema, strict=False),
    )
    validate(schema, reply.choices[0].message.content or "")


def test_json_object(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_json_object_needs_the_word_json(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model=model_id(sdk),
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )
    assert "json" in str(info.value)


def test_truncated_output_is_length(sdk: openai.OpenAI) -> None:
    schema = SCHEMAS["math_reasoning"]
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "hi"}],
        response_format=schema_format("m", schema),
        max_completion_tokens=5,
    )
    assert reply.choices[0].finish_reason == "length"


def test_streamed_structured_output(sdk: openai.OpenAI) -> None:
    schema = SCHEMAS["nested_objects"]
    stream = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "hi"}],
        response_format=schema_format("n", schema),
        stream=True,
    )
    text = ""
    finish = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "stop"
    validate(schema, text)


def test_n_choices_each_constrained(sdk: openai.OpenAI) -> None:
    schema = SCHEMAS["all_scalars"]
    reply = sdk.chat.completions.create(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "hi"}],
        response_format=schema_format("s", schema),
        n=3,
        temperature=1.0,
    )
    assert len(reply.choices) == 3
    for choice in reply.choices:
        validate(schema, choice.message.content or "")


class Step(BaseModel):
    explanation: str
    output: str


class MathReasoning(BaseModel):
    steps: list[Step]
    final_answer: str


def test_sdk_parse_helper(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.parse(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "solve 8x + 7 = -23"}],
        response_format=MathReasoning,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, MathReasoning)


def test_sdk_stream_helper(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.stream(
        model=model_id(sdk),
        messages=[{"role": "user", "content": "solve"}],
        response_format=MathReasoning,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, MathReasoning)
