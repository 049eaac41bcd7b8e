"""Structured outputs with the real bundled model: every finished output parses and validates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from tests.constraints.corpus import SCHEMAS, UNSUPPORTED
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

# More slots than the default so the corpus decodes in one batch; a short context per slot.
ENV = {"SERVERROOM_ENGINE__SLOTS": "16", "SERVERROOM_ENGINE__SLOT_CONTEXT": "1024"}
MAX_TOKENS = 200


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(Path(tmp_path_factory.mktemp("structured")), env=ENV)
    server.start()
    try:
        yield server
    finally:
        server.stop()


SYSTEM = "You are a helpful assistant. Reply with a short JSON object that fits the request."


def _format(name: str, schema: dict[str, Any]) -> Any:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


async def _one(client: openai.AsyncOpenAI, model: str, name: str) -> tuple[str, str, str | None]:
    reply = await client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Give me an example '{name.replace('_', ' ')}' record."},
        ],
        response_format=_format(name, SCHEMAS[name]),
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    choice = reply.choices[0]
    return name, choice.finish_reason, choice.message.content


@pytest.mark.timeout(1500)
def test_corpus_live(batch_server: LiveServer) -> None:
    async def run() -> list[tuple[str, str, str | None]]:
        client = openai.AsyncOpenAI(
            base_url=batch_server.base_url,
            api_key=batch_server.api_key,
            timeout=1500,
            max_retries=0,
        )
        async with client:
            model = (await client.models.list()).data[0].id
            return await asyncio.gather(*(_one(client, model, name) for name in sorted(SCHEMAS)))

    results = asyncio.run(run())
    finished = 0
    for name, finish, content in results:
        assert finish in ("stop", "length"), name
        if finish == "length":
            continue
        finished += 1
        schema = SCHEMAS[name]
        value = json.loads(content or "")
        checker = Draft202012Validator.FORMAT_CHECKER
        Draft202012Validator(schema, format_checker=checker).validate(value)
    print(f"{finished}/{len(SCHEMAS)} outputs finished and validated")
    assert finished >= len(SCHEMAS) // 3, f"only {finished} outputs finished"


def test_unsupported_live(live_client: openai.OpenAI) -> None:
    model = live_client.models.list().data[0].id
    schema, fragment = UNSUPPORTED["not_all_required"]
    with pytest.raises(openai.BadRequestError) as info:
        live_client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            response_format=_format("X", schema),
        )
    assert fragment in str(info.value)


class Person(BaseModel):
    name: str
    age: int
    city: str


def test_parse_helper_live(live_client: openai.OpenAI) -> None:
    model = live_client.models.list().data[0].id
    completion = live_client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "Describe a person named Ana from Lisbon as JSON."}],
        response_format=Person,
        max_tokens=200,
        temperature=0,
    )
    assert isinstance(completion.choices[0].message.parsed, Person)


def test_json_object_live(live_client: openai.OpenAI) -> None:
    model = live_client.models.list().data[0].id
    reply = live_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "List three colors as a JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
    )
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_responses_parse_live(live_client: openai.OpenAI) -> None:
    model = live_client.models.list().data[0].id
    response = live_client.responses.parse(
        model=model,
        input="Describe a person named Ana from Lisbon as JSON.",
        text_format=Person,
        max_output_tokens=200,
        temperature=0,
    )
    assert isinstance(response.output_parsed, Person)
