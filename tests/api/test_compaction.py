"""Compaction in-process: ``POST /v1/responses/compact`` and ``context_management``.

The fake engine's reply is scripted: asked for a summary it writes one naming a fact, and
otherwise it reports what its prompt held (the summary, an assistant reply that compaction
dropped), so each test sees exactly what the model read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.api.compaction import compaction_summary
from serverroom.app import create_app
from serverroom.engine.base import GenerationRequest
from serverroom.engine.fake import FakeEngine
from serverroom.settings import EngineSettings, Settings
from tests.conftest import fake_settings

SUMMARY = "SUMMARY: the user is Ada."
DROPPED = "ASSISTANT-ONLY-DETAIL"


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The prompts the engine was given; summaries are asked for by the summarizer's words."""
    prompts: list[bytes] = []

    def reply_for(self: FakeEngine, request: GenerationRequest) -> bytes:
        prompt = bytes(t for t in request.prompt if t < 256)
        prompts.append(prompt)
        if b"Summarize the conversation above" in prompt:
            return SUMMARY.encode()
        seen = [word for word in (b"SUMMARY:", DROPPED.encode()) if word in prompt]
        return b"I read " + (b" and ".join(seen) or b"nothing special") + b"."

    monkeypatch.setattr(FakeEngine, "reply_for", reply_for)
    yield prompts


def _dump(items: Any) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True, warnings=False) for item in items]


def _chat(sdk: openai.OpenAI) -> str:
    """A two-turn chain whose assistant side holds a detail only compaction can drop."""
    first = sdk.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": f"Noted. {DROPPED}"},
            {"role": "user", "content": "Remember it."},
        ],
    )
    return first.id


def test_compact_returns_user_messages_and_one_compaction_item(sdk: openai.OpenAI) -> None:
    previous = _chat(sdk)
    compacted = sdk.responses.compact(model="gpt-4o-mini", previous_response_id=previous)
    assert compacted.object == "response.compaction"
    kinds = [(item.type, getattr(item, "role", None)) for item in compacted.output]
    assert kinds == [("message", "user"), ("message", "user"), ("compaction", None)]
    item = compacted.output[-1]
    assert item.type == "compaction" and item.id.startswith("cmp_")
    assert compaction_summary(item.encrypted_content) == "The user" + SUMMARY  # its lead
    assert compacted.usage.input_tokens > 0 and compacted.usage.output_tokens > 0
    total = compacted.usage.input_tokens + compacted.usage.output_tokens
    assert compacted.usage.total_tokens == total


def test_the_next_turn_reads_the_summary_not_what_it_replaced(
    sdk: openai.OpenAI, scripted: list[bytes]
) -> None:
    compacted = sdk.responses.compact(model="gpt-4o-mini", previous_response_id=_chat(sdk))
    follow = [*_dump(compacted.output), {"role": "user", "content": "What is my name?"}]
    answer = sdk.responses.create(model="gpt-4o-mini", input=follow)  # type: ignore[arg-type]
    assert answer.output_text == "I read SUMMARY:."
    assert b"My name is Ada." in scripted[-1]  # the user's own words stay
    # The stateless chain: the full history plus the compaction item reads the same.
    full = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": f"Noted. {DROPPED}"},
        *follow,
    ]
    again = sdk.responses.create(model="gpt-4o-mini", input=full)  # type: ignore[arg-type]
    assert again.output_text == "I read SUMMARY:."


def test_a_compacted_prompt_is_smaller(sdk: openai.OpenAI) -> None:
    long_reply = {"role": "assistant", "content": f"{DROPPED} " * 200}
    items = [{"role": "user", "content": "Hello."}, long_reply]
    compacted = sdk.responses.compact(model="gpt-4o-mini", input=items)  # type: ignore[arg-type]
    before = sdk.responses.input_tokens.count(model="gpt-4o-mini", input=items)  # type: ignore[arg-type]
    after = sdk.responses.input_tokens.count(
        model="gpt-4o-mini",
        input=[*items, *_dump(compacted.output[-1:])],  # type: ignore[list-item]
    )
    assert after.input_tokens < before.input_tokens / 4


def test_a_compaction_item_the_server_did_not_make_is_a_400(client: TestClient) -> None:
    item = {"type": "compaction", "encrypted_content": "gAAAA-not-ours"}
    reply = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": [item]})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "input[0].encrypted_content"
    assert error["code"] == "invalid_encrypted_content"


def test_compact_needs_input(client: TestClient) -> None:
    reply = client.post("/v1/responses/compact", json={"model": "gpt-4o-mini"})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input"


def test_context_management_compacts_past_the_threshold(
    sdk: openai.OpenAI, scripted: list[bytes]
) -> None:
    management: Any = [{"type": "compaction", "compact_threshold": 150}]
    small = sdk.responses.create(model="gpt-4o-mini", input="Hi.", context_management=management)
    assert [item.type for item in small.output] == ["message"]  # under the threshold
    previous = _chat(sdk)
    answer = sdk.responses.create(
        model="gpt-4o-mini",
        input="What is my name?",
        previous_response_id=previous,
        context_management=management,
    )
    assert [item.type for item in answer.output] == ["compaction", "message"]
    assert answer.output_text == "I read SUMMARY:."
    summarizing = [p for p in scripted if b"Summarize the conversation above" in p]
    assert len(summarizing) == 1 and DROPPED.encode() in summarizing[0]
    # Billed: the summary pass and the answer.
    asked = scripted[-2:]
    assert answer.usage is not None and answer.usage.input_tokens >= len(asked[0])
    # The chain goes on from the compaction: the dropped detail stays dropped.
    later = sdk.responses.create(
        model="gpt-4o-mini", input="And again?", previous_response_id=answer.id
    )
    assert later.output_text == "I read SUMMARY:."


def test_context_management_streams_the_compaction_item_first(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(
        model="gpt-4o-mini",
        input="What is my name?",
        previous_response_id=_chat(sdk),
        context_management=[{"type": "compaction", "compact_threshold": 150}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [e for e in events if e.type == "response.output_item.added"]
    assert added[0].item.type == "compaction" and added[0].output_index == 0
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[0].item.type == "compaction"
    assert [item.type for item in final.output] == ["compaction", "message"]


def _long_chain(sdk: openai.OpenAI, turns: int, **extra: Any) -> list[str]:
    """The output item types of a chain of ``turns`` long inputs."""
    previous, kinds = None, []
    for turn in range(turns):
        reply = sdk.responses.create(
            model="gpt-4o-mini",
            input=f"Turn {turn}: " + "words " * 60,
            previous_response_id=previous,
            max_output_tokens=40,
            **extra,
        )
        previous, kinds = reply.id, kinds + [item.type for item in reply.output]
    return kinds


def test_context_management_keeps_a_chain_past_the_context_alive(tmp_path: Path) -> None:
    """A chain longer than the context: without compaction a 400; with it, answers."""
    settings = fake_settings(tmp_path, engine=EngineSettings(kind="fake", slot_context=1024))
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(
            api_key="sk-x", base_url="http://testserver/v1", http_client=client, max_retries=0
        )
        kinds = _long_chain(sdk, 8, context_management=[{"type": "compaction"}])
        assert kinds.count("message") == 8 and "compaction" in kinds
        with pytest.raises(openai.BadRequestError) as failed:
            _long_chain(sdk, 8)
        assert failed.value.code == "context_length_exceeded"


def test_summaries_of_a_transcript_longer_than_the_context_take_several_passes(
    tmp_path: Path, scripted: list[bytes]
) -> None:
    settings = fake_settings(tmp_path, engine=EngineSettings(kind="fake", slot_context=1024))
    with TestClient(create_app(settings)) as client:
        items = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"Part {i}. " + "x" * 300}
            for i in range(12)
        ]
        reply = client.post("/v1/responses/compact", json={"model": "gpt-4o-mini", "input": items})
        assert reply.status_code == 200, reply.text
    passes = [p for p in scripted if b"Summarize the conversation above" in p]
    assert len(passes) >= 3
    assert all(len(p) <= 1024 for p in passes)
    assert (
        b"Summary of the conversation before this part:\nThe user" + SUMMARY.encode() in passes[-1]
    )
    assert b"Part 11." in passes[-1] and b"Part 0." in passes[0]


def test_bad_context_management_is_a_400(client: TestClient) -> None:
    for value, param in (
        ([{"type": "truncate"}], "context_management[0].type"),
        (
            [{"type": "compaction", "compact_threshold": 0}],
            "context_management[0].compact_threshold",
        ),
    ):
        body = {"model": "gpt-4o-mini", "input": "x", "context_management": value}
        reply = client.post("/v1/responses", json=body)
        assert reply.status_code == 400, value
        assert reply.json()["error"]["param"] == param


def test_compaction_in_a_conversation(sdk: openai.OpenAI, settings: Settings) -> None:
    conversation = sdk.conversations.create()
    for text in ("My name is Ada.", f"Say {DROPPED}."):
        sdk.responses.create(model="gpt-4o-mini", input=text, conversation=conversation.id)
    answer = sdk.responses.create(
        model="gpt-4o-mini",
        input="What is my name?",
        conversation=conversation.id,
        context_management=[{"type": "compaction", "compact_threshold": 100}],
    )
    assert answer.output[0].type == "compaction"
    items = sdk.conversations.items.list(conversation.id, order="asc")
    assert any(item.type == "compaction" for item in items)
    last = sdk.responses.create(model="gpt-4o-mini", input="Again?", conversation=conversation.id)
    assert "SUMMARY:" in last.output_text


def test_compacting_again_reads_the_new_summary(sdk: openai.OpenAI, scripted: list[bytes]) -> None:
    """Input that holds a compaction item, compacted again: the newer summary is the one read
    (it summarizes the older one and what followed)."""
    compacted = sdk.responses.compact(model="gpt-4o-mini", previous_response_id=_chat(sdk))
    follow: Any = [
        *_dump(compacted.output),
        {"role": "assistant", "content": f"{DROPPED} " * 40},
        {"role": "user", "content": "What is my name?"},
    ]
    answer = sdk.responses.create(
        model="gpt-4o-mini",
        input=follow,
        context_management=[{"type": "compaction", "compact_threshold": 150}],
    )
    assert [item.type for item in answer.output] == ["compaction", "message"]
    assert answer.output_text == "I read SUMMARY:."
    assert scripted[-1].count(b"SUMMARY:") == 1  # the new summary only
    assert b"What is my name?" in scripted[-1]


def test_a_stateless_agent_loop_keeps_only_the_last_tool_round(
    sdk: openai.OpenAI, scripted: list[bytes]
) -> None:
    def call(n: int, output: str) -> list[dict[str, Any]]:
        call_id = f"call_{n}"
        return [
            {"type": "function_call", "call_id": call_id, "name": "look", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call_id, "output": output},
        ]

    items: Any = [
        {"role": "user", "content": "Find my name."},
        *call(1, f"{DROPPED} " * 40),
        *call(2, "LAST-RESULT"),
    ]
    answer = sdk.responses.create(
        model="gpt-4o-mini",
        input=items,
        context_management=[{"type": "compaction", "compact_threshold": 150}],
    )
    assert answer.output[0].type == "compaction"
    read = scripted[-1]
    assert b"SUMMARY:" in read and b"LAST-RESULT" in read and DROPPED.encode() not in read
    assert read.index(b"SUMMARY:") < read.index(b"LAST-RESULT")
