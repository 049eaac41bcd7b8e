"""Custom tools with the real bundled model: a regex and a Lark grammar hold the model's
tool input on both APIs, at the platform's default temperature, every time."""

from __future__ import annotations

import re

import openai
import pytest
from lark import Lark

pytestmark = pytest.mark.live

DATE = r"\d{4}-\d{2}-\d{2}"
SQL = """
start: "SELECT " columns " FROM " NAME (" WHERE " NAME " = " NUMBER)? ";"
columns: NAME | NAME ", " NAME | NAME ", " NAME ", " NAME
NAME: /[a-z_]{1,12}/
NUMBER: /[0-9]{1,6}/
"""


def _called(client: openai.OpenAI, question: str, name: str, syntax: str, grammar: str) -> str:
    """The input the model gave the custom tool ``name`` it was made to call."""
    response = client.responses.create(
        model="gpt-4.1-mini",
        input=question,
        tools=[
            {
                "type": "custom",
                "name": name,
                "description": f"The {name} tool.",
                "format": {"type": "grammar", "syntax": syntax, "definition": grammar},
            }
        ],
        tool_choice={"type": "custom", "name": name},
        max_output_tokens=150,  # the grammar's longest input is about 50 tokens
    )
    call = response.output[0]
    assert call.type == "custom_tool_call", call
    return call.input


@pytest.mark.parametrize("attempt", range(3))
def test_responses_regex_and_lark_inputs_match(live_client: openai.OpenAI, attempt: int) -> None:
    booked = _called(live_client, "Book it for 1 March 2027.", "book", "regex", DATE)
    assert re.fullmatch(DATE, booked), booked
    Lark(SQL).parse(_called(live_client, "Names of users with id 7?", "sql", "lark", SQL))


def test_chat_custom_tool_input_matches(live_client: openai.OpenAI) -> None:
    completion = live_client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "Find the names of users with id 7."}],
        tools=[
            {
                "type": "custom",
                "custom": {
                    "name": "sql",
                    "description": "Run a SQL query.",
                    "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": SQL}},
                },
            }
        ],
        tool_choice={"type": "custom", "custom": {"name": "sql"}},
        max_tokens=150,
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.type == "custom"
    Lark(SQL).parse(call.custom.input)
