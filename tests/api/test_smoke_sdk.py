"""The SDK against the in-process app (fake engine)."""

from __future__ import annotations

import openai
import pytest


def test_chat_roundtrip(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"


def test_unknown_model(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
