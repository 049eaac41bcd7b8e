"""Forced tokens on the bundled model: with ``engine.fast_forward`` the tokens a schema or a
tool grammar allows as the only continuation are appended without sampling; under greedy
decoding every output is the same as without it (the schema corpus, and a strict tool call)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.constraints.corpus import SCHEMAS
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

MODEL = "gpt-4o-mini"
PROMPT = [{"role": "user", "content": "Fill in the form with realistic example values."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def _server(root: Path, fast_forward: bool) -> LiveServer:
    env = {"SERVERROOM_ENGINE__FAST_FORWARD": str(fast_forward).lower()}
    return LiveServer(root, env=env, args=["--engine.slot_context", "2048"])


def _forced_tokens(server: LiveServer) -> float:
    """``serverroom_forced_output_tokens_total`` summed over models, from ``/metrics``."""
    text = httpx.get(f"{server.root_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("serverroom_forced_output_tokens_total{")
    )


def _outputs(server: LiveServer) -> dict[str, Any]:
    client = openai.OpenAI(api_key="sk-x", base_url=server.base_url, max_retries=0)
    out: dict[str, Any] = {}
    for name in sorted(SCHEMAS):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=PROMPT,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=160,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True},
            },
        )
        out[name] = (reply.choices[0].message.content, reply.usage.completion_tokens)  # type: ignore[union-attr]
    call = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        temperature=0,
    )
    calls = call.choices[0].message.tool_calls or []
    out["tool_call"] = [(c.function.name, c.function.arguments) for c in calls]  # type: ignore[union-attr]
    out["forced"] = _forced_tokens(server)
    return out


@pytest.fixture(scope="module")
def without(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with _server(tmp_path_factory.mktemp("ff-off"), fast_forward=False).running() as server:
        yield _outputs(server)


def test_forced_tokens_change_no_greedy_output(tmp_path: Path, without: dict[str, Any]) -> None:
    with _server(tmp_path, fast_forward=True).running() as server:
        forced = _outputs(server)
    assert forced["tool_call"] and forced["tool_call"][0][0] == "get_weather"
    # Keys, punctuation and the call's envelope were forced: a good share of the output.
    outputs = sum(without[name][1] for name in SCHEMAS)
    assert without["forced"] == 0 and forced["forced"] > outputs / 5, (forced["forced"], outputs)
    differ = {
        k: (forced[k], without[k]) for k in without if k != "forced" and forced[k] != without[k]
    }
    assert differ == {}
