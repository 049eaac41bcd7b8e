"""o3 against a real ``serverroom serve`` with the bundled model: the scaffolded thinking phase
runs on the real model (its block under the budget's grammar, then the answer), through the
SDK exactly as a user calls a reasoning model."""

from __future__ import annotations

import openai
import pytest
from openai.types.responses import ResponseCompletedEvent, ResponseIncompleteEvent

pytestmark = pytest.mark.live


def test_o3_thinks_then_answers(live_client: openai.OpenAI) -> None:
    response = live_client.responses.create(
        model="o3",
        input="What is 2 + 3?",
        reasoning={"effort": "low", "summary": "auto"},
        max_output_tokens=200,
    )
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary
    thought = reasoning.summary[0].text
    assert thought.strip() and "<think>" not in thought and "</think>" not in thought
    assert response.output_text.strip() and "</think>" not in response.output_text
    assert response.usage is not None
    spent = response.usage.output_tokens_details.reasoning_tokens
    assert 0 < spent <= 64 + 8  # low effort's budget, and the block's close
    assert response.usage.output_tokens > spent


def test_o3_streams_its_summary_and_chat_counts_reasoning(live_client: openai.OpenAI) -> None:
    with live_client.responses.stream(
        model="o3",
        input="Name a color.",
        reasoning={"effort": "minimal", "summary": "auto"},
        max_output_tokens=80,
    ) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    last = events[-1]  # completed or incomplete (the limit), either way
    assert isinstance(last, ResponseCompletedEvent | ResponseIncompleteEvent)
    final = last.response
    first_text = (
        kinds.index("response.output_text.delta")
        if "response.output_text.delta" in kinds
        else len(kinds)
    )
    assert "response.reasoning_summary_text.done" in kinds[:first_text]
    assert final.output[0].type == "reasoning"
    chat = live_client.chat.completions.create(
        model="o3",
        messages=[{"role": "user", "content": "Say hi."}],
        reasoning_effort="low",
        max_completion_tokens=120,
    )
    assert chat.usage is not None and chat.usage.completion_tokens_details is not None
    assert 0 < (chat.usage.completion_tokens_details.reasoning_tokens or 0) <= 72
    assert "<think>" not in (chat.choices[0].message.content or "")
