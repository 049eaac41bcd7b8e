"""Compaction against a real ``serverroom serve`` with the bundled model (2048-token slots):
a chain that outgrows the context keeps going with ``context_management``, and a compacted
conversation continues statelessly from ``/v1/responses/compact``'s output."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from serverroom.api.compaction import compaction_summary

pytestmark = pytest.mark.live

FILLER = (
    "The lighthouse keeper wrote in the log that the wind turned north, the boats came in"
    " early, and the lamp was cleaned and lit at dusk. "
) * 14  # about 400 tokens a turn


def test_a_chain_past_the_context_keeps_going(live_client: openai.OpenAI) -> None:
    previous: str | None = None
    summaries: list[str | None] = []
    for turn in range(6):  # ~6 x 450 tokens: past the 2048-token context without compaction
        reply = live_client.responses.create(
            model="gpt-4o-mini",
            input=f"Note {turn}: my name is Ada. {FILLER}Reply with one short sentence.",
            previous_response_id=previous,
            max_output_tokens=24,
            context_management=[{"type": "compaction", "compact_threshold": 1200}],
        )
        assert reply.status == "completed" or reply.status == "incomplete"
        summaries += [
            compaction_summary(item.encrypted_content)
            for item in reply.output
            if item.type == "compaction"
        ]
        previous = reply.id
    assert summaries, "the chain was never compacted"
    assert all(summaries), "a compaction holds no summary"


def test_compact_then_continue_statelessly(live_client: openai.OpenAI) -> None:
    items: Any = [
        {"role": "user", "content": "My name is Ada and I keep a lighthouse."},
        {"role": "assistant", "content": FILLER},
        {"role": "user", "content": "Summarize my job in five words."},
    ]
    compacted = live_client.responses.compact(model="gpt-4o-mini", input=items)
    assert [item.type for item in compacted.output] == ["message", "message", "compaction"]
    summary = compaction_summary(compacted.output[-1].encrypted_content)  # type: ignore[union-attr]
    assert summary, "the model wrote no summary"
    assert compacted.usage.output_tokens > 0
    follow = [
        *(item.model_dump(exclude_none=True, warnings=False) for item in compacted.output),
        {"role": "user", "content": "What is my name?"},
    ]
    before = live_client.responses.input_tokens.count(model="gpt-4o-mini", input=items)
    after = live_client.responses.input_tokens.count(model="gpt-4o-mini", input=follow)
    assert after.input_tokens < before.input_tokens
    answer = live_client.responses.create(model="gpt-4o-mini", input=follow, max_output_tokens=24)
    assert answer.output_text.strip()
