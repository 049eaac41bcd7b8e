"""The Responses API's code_interpreter tool in-process: the fake engine writes the code (a
scripted reply), the real sandbox runs it in a real container, files it writes are container
files to download and cite; a failing or endless program fails its call, not the response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from serverroom.engine.base import GenerationRequest
from serverroom.engine.fake import FakeEngine

COMPUTE = "total = sum(range(10))\nopen('result.txt', 'w').write(str(total))\nprint(total)"


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The code the model writes, one program per call; after a result it answers."""
    programs: list[str] = []

    def reply_for(self: FakeEngine, request: GenerationRequest) -> bytes:
        prompt = bytes(t for t in request.prompt if t < 256)
        if prompt.rstrip().endswith(b"</tool_response>") or not programs:
            return b"The answer is in the output."
        code = programs.pop(0)
        return f'<tool_call>\n{{"name": "python"}}\n{code}\n</tool_call>'.encode()

    monkeypatch.setattr(FakeEngine, "reply_for", reply_for)
    yield programs


def _ask(sdk: openai.OpenAI, **extra: Any) -> Any:
    return sdk.responses.create(
        model="gpt-4.1-mini",
        input=extra.pop("input", "What is the sum of 0 to 9? Save it to a file."),
        tools=[extra.pop("tool", {"type": "code_interpreter", "container": {"type": "auto"}})],
        tool_choice=extra.pop("tool_choice", {"type": "code_interpreter"}),
        max_output_tokens=extra.pop("max_output_tokens", 400),
        **extra,
    )


def test_code_runs_and_its_file_is_downloaded(sdk: openai.OpenAI, script: list[str]) -> None:
    script.append(COMPUTE)
    response = _ask(sdk, include=["code_interpreter_call.outputs"])
    call, message = response.output[0], response.output[-1]
    assert call.type == "code_interpreter_call" and call.status == "completed"
    assert call.code == COMPUTE and call.container_id.startswith("cntr")
    assert call.outputs and call.outputs[0].type == "logs" and call.outputs[0].logs == "45\n"
    assert message.type == "message" and message.status == "completed"
    cited = [a for a in message.content[0].annotations if a.type == "container_file_citation"]
    assert [a.filename for a in cited] == ["result.txt"]
    content = sdk.containers.files.content.retrieve(
        cited[0].file_id, container_id=call.container_id
    )
    assert content.read() == b"45"
    files = sdk.containers.files.list(call.container_id)
    assert [f.path for f in files] == ["/mnt/data/result.txt"]
    # Without the include the call's outputs are not shown; along the chain the container stays.
    script.append("print(open('result.txt').read())")
    later = _ask(sdk, previous_response_id=response.id)
    assert later.output[0].container_id == call.container_id and later.output[0].outputs is None
    assert later.usage is not None and later.usage.input_tokens > response.usage.input_tokens / 2


def test_a_long_output_leaves_the_next_round_what_the_context_holds(
    sdk: openai.OpenAI, script: list[str]
) -> None:
    # The output fills most of what the context holds beyond the prompt, more than the reply's
    # limit loses to the call: the round after it gets what is left of the context, instead of
    # failing for a context longer than the model's.
    probe = _ask(sdk, tool_choice="auto", max_output_tokens=16)
    assert probe.usage is not None
    room = 8192 - probe.usage.input_tokens  # the fake engine's context in these tests
    script.append(f"print('x' * {room - 300})")
    response = _ask(sdk, max_output_tokens=4000, include=["code_interpreter_call.outputs"])
    assert response.status == "completed", response.error
    assert response.output[0].status == "completed"
    assert response.output[-1].type == "message"


def test_failures_fail_the_call_not_the_response(sdk: openai.OpenAI, script: list[str]) -> None:
    script.append("raise ValueError('nope')")
    failed = _ask(sdk, include=["code_interpreter_call.outputs"])
    assert failed.status == "completed" and failed.output[0].status == "failed"
    assert "ValueError: nope" in failed.output[0].outputs[0].logs


def test_an_endless_program_is_stopped(
    sdk: openai.OpenAI, script: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script.append("while True:\n    pass")
    response = _ask(sdk, include=["code_interpreter_call.outputs"])
    assert response.status == "completed" and response.output[0].status == "failed"


def test_the_stream_follows_the_platform(sdk: openai.OpenAI, script: list[str]) -> None:
    script.append("print(6 * 7)")
    with sdk.responses.stream(
        model="gpt-4.1-mini",
        input="Six times seven?",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        tool_choice={"type": "code_interpreter"},  # type: ignore[typeddict-item]
        max_output_tokens=400,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    order = [
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    at = [kinds.index(k) for k in order]
    assert at == sorted(at)
    deltas = "".join(
        e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"
    )
    assert deltas == final.output[0].code == "print(6 * 7)"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_containers_are_checked(sdk: openai.OpenAI, script: list[str]) -> None:
    with pytest.raises(openai.NotFoundError):
        _ask(sdk, tool={"type": "code_interpreter", "container": "cntr_nope"})
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(sdk, tool={"type": "code_interpreter"})
    assert caught.value.body["param"] == "tools[0].container"  # type: ignore[index]
    made = sdk.containers.create(name="mine")
    script.append("print(1)")
    response = _ask(sdk, tool={"type": "code_interpreter", "container": made.id})
    assert response.output[0].container_id == made.id
