"""The Responses WebSocket mode against a real ``serverroom serve`` with the bundled model,
through the official SDK's ``responses.connect()``."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.live


def test_two_chained_responses_over_one_socket(live_client: openai.OpenAI) -> None:
    with live_client.responses.connect() as connection:
        connection.response.create(model="gpt-4o-mini", input="Name a color.", max_output_tokens=16)
        text, first = "", None
        for event in connection:
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type in ("response.completed", "response.incomplete"):
                first = event.response
                break
        assert first is not None and text and first.output_text == text
        connection.response.create(
            model="gpt-4o-mini",
            input="Name another.",
            previous_response_id=first.id,
            max_output_tokens=16,
            stream_id="lane",
        )
        for event in connection:
            assert getattr(event, "stream_id", None) == "lane"
            if event.type in ("response.completed", "response.incomplete"):
                assert event.response.previous_response_id == first.id
                assert event.response.usage is not None
                assert event.response.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]
                break
    assert live_client.responses.retrieve(first.id).output_text == text
