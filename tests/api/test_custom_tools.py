"""Custom tools on the Responses API (fake engine): the input is generated under the tool's
regex or Lark grammar (or is free text), returned as a ``custom_tool_call`` with its streamed
input events, and its ``custom_tool_call_output`` is taken back; bad formats are 400s."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest
from lark import Lark

DATE = r"\d{4}-\d{2}-\d{2}"
SUM = 'start: expr\nexpr: NUMBER (" + " NUMBER)*\nNUMBER: /[0-9]{1,4}/'


def _custom(name: str, fmt: dict[str, Any] | None = None) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "custom", "name": name, "description": f"The {name} tool."}
    if fmt is not None:
        tool["format"] = fmt
    return tool


def _forced(sdk: openai.OpenAI, tool: dict[str, Any], **extra: Any) -> Any:
    return sdk.responses.create(
        model="gpt-4.1-mini",
        input=extra.pop("input", "Use the tool."),
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "custom", "name": tool["name"]},
        max_output_tokens=200,
        **extra,
    )


@pytest.mark.parametrize("seed", range(3))
def test_regex_and_lark_inputs_always_match(sdk: openai.OpenAI, seed: int) -> None:
    dated = _forced(
        sdk, _custom("date", {"type": "grammar", "syntax": "regex", "definition": DATE})
    )
    call = dated.output[0]
    assert call.type == "custom_tool_call" and call.name == "date" and call.call_id
    assert re.fullmatch(DATE, call.input), call.input
    summed = _forced(sdk, _custom("sum", {"type": "grammar", "syntax": "lark", "definition": SUM}))
    Lark(SUM).parse(summed.output[0].input)  # raises if it does not match
    free = _forced(sdk, _custom("note"))
    assert free.output[0].type == "custom_tool_call" and isinstance(free.output[0].input, str)


def test_the_output_goes_back_and_the_stream_tells_the_input(sdk: openai.OpenAI) -> None:
    tool = _custom("date", {"type": "grammar", "syntax": "regex", "definition": DATE})
    with sdk.responses.stream(
        model="gpt-4.1-mini",
        input="When?",
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "custom", "name": "date"},
        max_output_tokens=200,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    done = next(e for e in events if e.type == "response.custom_tool_call_input.done")
    call = final.output[0]
    assert "".join(deltas) == done.input == call.input
    kinds = [e.type for e in events]
    assert kinds.index("response.output_item.added") < kinds.index(done.type)
    assert kinds.index(done.type) < kinds.index("response.output_item.done")
    answer = sdk.responses.create(
        model="gpt-4.1-mini",
        previous_response_id=final.id,
        tools=[tool],  # type: ignore[list-item]
        input=[{"type": "custom_tool_call_output", "call_id": call.call_id, "output": "ok"}],
    )
    assert answer.status == "completed" and answer.output[-1].type in (
        "message",
        "custom_tool_call",
    )
    replayed = sdk.responses.create(
        model="gpt-4.1-mini",
        tools=[tool],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "When?"},
            call.model_dump(exclude_none=True),
            {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "ok"},
        ],
        store=False,
    )
    assert replayed.status == "completed"


@pytest.mark.parametrize(
    "fmt, param",
    [
        ({"type": "grammar", "syntax": "ebnf", "definition": "x"}, "tools[0].format"),
        ({"type": "grammar", "syntax": "lark"}, "tools[0].format"),
        ({"type": "grammar", "syntax": "lark", "definition": "start: ("}, "tools"),
        ({"type": "grammar", "syntax": "regex", "definition": "[unclosed"}, "tools"),
    ],
)
def test_bad_formats_are_400s(sdk: openai.OpenAI, fmt: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _forced(sdk, _custom("bad", fmt))
    assert caught.value.body["param"] == param  # type: ignore[index]


def _chat_tool(name: str, fmt: dict[str, Any]) -> Any:
    return {"type": "custom", "custom": {"name": name, "description": "A tool.", "format": fmt}}


def test_chat_completions_custom_tools(sdk: openai.OpenAI) -> None:
    regex = {"type": "grammar", "grammar": {"syntax": "regex", "definition": DATE}}
    completion = sdk.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "When?"}],
        tools=[_chat_tool("date", regex)],
        tool_choice={"type": "custom", "custom": {"name": "date"}},
        max_tokens=100,
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls" and message.tool_calls
    call = message.tool_calls[0]
    assert call.type == "custom" and call.custom.name == "date"
    assert re.fullmatch(DATE, call.custom.input)
    # Streamed: the input arrives in pieces under the call's index.
    lark = {"type": "grammar", "grammar": {"syntax": "lark", "definition": SUM}}
    pieces: list[str] = []
    for chunk in sdk.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "Add."}],
        tools=[_chat_tool("sum", lark)],
        tool_choice={"type": "custom", "custom": {"name": "sum"}},
        max_tokens=100,
        stream=True,
    ):
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            custom = delta.model_extra.get("custom") if delta.model_extra else None
            pieces.append(custom["input"] if custom else "")
    Lark(SUM).parse("".join(pieces))
    # The call and its output go back as messages.
    later = sdk.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {"role": "user", "content": "When?"},
            message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "noted"},
        ],
        tools=[_chat_tool("date", regex)],
        max_tokens=50,
    )
    assert later.choices[0].finish_reason in ("stop", "length", "tool_calls")
