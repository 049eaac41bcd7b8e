"""Images and audio passed on to upstream models: the SDK's calls, the model renamed, the
request admitted and its reported usage billed (a stub HTTP upstream behind the real app)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.metering import Admission, Usage
from tests.conftest import fake_settings
from tests.upstream.stub import stub_server

CATALOG = """
[[model]]
id = "{name}"
backend = "upstream"
base_urls = ["{url}"]
upstream_model = "real-{name}"
"""


@dataclass
class Ticket:
    admission: Admission
    settled: list[Usage] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    async def settle(self, usage: Usage) -> None:
        self.settled.append(usage)


@dataclass
class Metering:
    tickets: list[Ticket] = field(default_factory=list)

    async def admit(self, admission: Admission) -> Ticket:
        self.tickets.append(Ticket(admission))
        return self.tickets[-1]


def _upstream(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/models"):
        return httpx.Response(200, json={"data": []})
    if path.endswith("/images/generations"):
        body = json.loads(request.content)
        if body["prompt"] == "refuse":
            error = {"message": "unsafe", "type": "invalid_request_error", "param": "prompt"}
            return httpx.Response(400, json={"error": {**error, "code": "content_policy"}})
        usage = {"input_tokens": 7, "output_tokens": 1000, "total_tokens": 1007}
        image = {"b64_json": "aGk=", "revised_prompt": body["model"]}
        return httpx.Response(200, json={"created": 1, "data": [image], "usage": usage})
    if path.endswith("/audio/transcriptions"):
        content = request.content
        heard = "real-whisper" in content.decode(errors="replace") and b"RIFFdata" in content
        return httpx.Response(200, json={"text": f"heard={heard}"})
    if path.endswith("/audio/speech"):
        return httpx.Response(200, content=b"ID3audio", headers={"content-type": "audio/mpeg"})
    return httpx.Response(404, json={"error": {"message": "no such route"}})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, Metering]]:
    catalog = tmp_path / "models.toml"
    with stub_server(_upstream) as server:
        url = server.base_url("up")
        names = ("image", "whisper", "tts")
        catalog.write_text("".join(CATALOG.format(name=n, url=url) for n in names))
        settings = fake_settings(tmp_path, catalog_file=catalog)
        yield from _serve(create_app(settings))


def _serve(app: FastAPI) -> Iterator[tuple[openai.OpenAI, Metering]]:
    metering = Metering()
    with TestClient(app) as test_client:
        app.state.context.metering = metering
        yield (
            openai.OpenAI(
                api_key="sk-test",
                base_url="http://testserver/v1",
                http_client=test_client,
                max_retries=0,
            ),
            metering,
        )


def test_images_and_audio_go_to_the_upstream(client: tuple[openai.OpenAI, Metering]) -> None:
    sdk, metering = client
    image = sdk.images.generate(model="image", prompt="a cat")
    assert (
        image.data
        and image.data[0].b64_json == "aGk="
        and image.data[0].revised_prompt == "real-image"
    )
    text = sdk.audio.transcriptions.create(model="whisper", file=("a.wav", b"RIFFdata"))
    assert text.text == "heard=True"
    speech = sdk.audio.speech.create(model="tts", voice="alloy", input="hi")
    assert speech.read() == b"ID3audio"
    endpoints = [t.admission.endpoint for t in metering.tickets]
    assert endpoints == ["/v1/images/generations", "/v1/audio/transcriptions", "/v1/audio/speech"]
    assert metering.tickets[0].settled == [Usage(7, 0, 1000)]
    assert all(len(t.settled) == 1 for t in metering.tickets)


def test_refusals_are_the_platforms_errors(client: tuple[openai.OpenAI, Metering]) -> None:
    sdk, metering = client
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.images.generate(model="image", prompt="refuse")
    assert refused.value.code == "content_policy" and refused.value.param == "prompt"
    assert metering.tickets[-1].settled == [Usage(0, 0, 0)]
    with pytest.raises(openai.BadRequestError) as local:
        sdk.images.generate(model="gpt-4.1", prompt="a cat")
    assert local.value.code == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        sdk.images.generate(model="dall-e-9", prompt="a cat")
    with pytest.raises(openai.BadRequestError) as missing:
        sdk.post("/images/generations", body={"prompt": "x"}, cast_to=object)
    assert missing.value.param == "model"
