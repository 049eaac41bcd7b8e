"""The code interpreter with the real bundled model: it writes Python as the tool's plain
input, a real ``serverroom serve`` runs it in the bubblewrap sandbox inside a container, and
the run's logs come back in the call item; the container is a real Containers API object."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.live


def test_the_model_writes_code_that_the_server_runs(live_client: openai.OpenAI) -> None:
    response = live_client.responses.create(
        model="gpt-4.1-mini",
        instructions="Answer with Python code that prints the result.",
        input="Use Python to print 6 * 7.",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        tool_choice={"type": "code_interpreter"},  # type: ignore[typeddict-item]
        include=["code_interpreter_call.outputs"],
        max_output_tokens=1000,  # a program is cut at 2,000 characters, then it runs
        temperature=0,  # one program every run (sampled, one run in many was 1,000 tokens of it)
    )
    call = response.output[0]
    assert call.type == "code_interpreter_call" and call.code is not None  # may be empty
    assert call.status in ("completed", "failed")  # the model's code ran, well or not
    assert call.outputs and call.outputs[0].type == "logs"
    if call.status == "failed":  # a program that failed says why
        assert call.outputs[0].logs.strip()
    container = live_client.containers.retrieve(call.container_id)
    assert container.id == call.container_id and container.status == "running"
    assert response.output[-1].type in ("message", "code_interpreter_call")
