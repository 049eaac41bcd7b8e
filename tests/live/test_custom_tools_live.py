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
columns: NAME (", " NAME)*
NAME: /[a-z_]{1,12}/
NUMBER: /[0-9]{1,6}/
"""


@pytest.mark.parametrize("attempt", range(3))
def test_responses_regex_and_lark_inputs_match(live_client: openai.OpenAI, attempt: int) -> None:
    dated = live_client.responses.create(
        model="gpt-4.1-mini",
        input="Book the meeting for the first of March 2027.",
        tools=[
            {
                "type": "custom",
                "name": "book",
                "description": "Book a meeting on a date.",
                "format": {"type": "grammar", "syntax": "regex", "definition": DATE},
            }
        ],
        tool_choice={"type": "custom", "name": "book"},
        max_output_tokens=60,
    )
    call = dated.output[0]
    assert call.type == "custom_tool_call" and re.fullmatch(DATE, call.input), call
    queried = live_client.responses.create(
        model="gpt-4.1-mini",
        input="Find the names of users with id 7.",
        tools=[
            {
                "type": "custom",
                "name": "sql",
                "description": "Run a SQL query.",
                "format": {"type": "grammar", "syntax": "lark", "definition": SQL},
            }
        ],
        tool_choice={"type": "custom", "name": "sql"},
        max_output_tokens=80,
    )
    Lark(SQL).parse(queried.output[0].input)


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
        max_tokens=80,
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.type == "custom"
    Lark(SQL).parse(call.custom.input)
