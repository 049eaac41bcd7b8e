"""Image inputs: ``input_image`` parts checked (data or http(s) URL, or a file id; ``detail``),
refused with the platform's 400 by models that read text only, and handed to an upstream
vision model as Chat ``image_url`` parts (files inlined as data URLs) through both APIs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.catalog import Catalog, CatalogError
from tests.conftest import fake_settings
from tests.upstream.stub import stub_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
CATALOG = """
[[model]]
id = "vlm"
backend = "upstream"
base_urls = ["{url}"]
upstream_model = "real-vlm"

[[model]]
id = "text-only"
backend = "upstream"
base_urls = ["{url}"]
vision = false
"""


def _image_input(image: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [{"type": "input_text", "text": "What is this?"}, {"type": "input_image", **image}]
    return [{"role": "user", "content": parts}]


def test_local_models_refuse_images_with_the_platforms_400(client: TestClient) -> None:
    body = {"model": "gpt-4o", "input": _image_input({"image_url": PNG_URL})}
    reply = client.post("/v1/responses", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": "Content type 'input_image' is not supported by this model; only text parts"
        " are.",
        "type": "invalid_request_error",
        "param": "input[0].content[1].type",
        "code": "unsupported_content_type",
    }
    parts = [
        {"type": "text", "text": "What?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]}
    refused = client.post("/v1/chat/completions", json=chat)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "messages[0].content[1].type"


@pytest.mark.parametrize(
    ("image", "param", "code"),
    [
        ({}, "input[0].content[1]", "invalid_value"),
        ({"image_url": PNG_URL, "file_id": "file-x"}, "input[0].content[1]", "invalid_value"),
        (
            {"image_url": "data:text/plain;base64,aGk="},
            "input[0].content[1].image_url",
            "invalid_image_url",
        ),
        ({"image_url": "ftp://host/cat.png"}, "input[0].content[1].image_url", "invalid_image_url"),
        ({"image_url": PNG_URL, "detail": "huge"}, "input[0].content[1].detail", "invalid_value"),
    ],
)
def test_bad_image_parts_are_400s(
    client: TestClient, image: dict[str, Any], param: str, code: str
) -> None:
    reply = client.post("/v1/responses", json={"model": "gpt-4o", "input": _image_input(image)})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_a_local_vision_entry_needs_a_projector(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[[model]]\nid = "m"\ngguf = "m.gguf"\nvision = true\n')
    with pytest.raises(CatalogError, match="mmproj"):
        Catalog.load(path)


def test_a_projector_makes_a_local_model_read_images(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[[model]]\nid = "m"\ngguf = "m.gguf"\nmmproj = "p.gguf"\n'
        '[[model]]\nid = "m-alias"\nalias_of = "m"\n'
    )
    catalog = Catalog.load(path)
    for name in ("m", "m-alias"):
        entry = catalog.resolve(name)
        assert entry.vision is True and entry.mmproj == str(tmp_path / "p.gguf")
    assert Catalog.load().resolve("gpt-4o-mini").vision is False  # the bundled model reads text


@pytest.mark.parametrize(
    "extra", ['backend = "upstream"\nbase_urls = ["http://h/v1"]', "vision = false"]
)
def test_a_projector_is_for_a_local_model_that_reads_images(tmp_path: Path, extra: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(f'[[model]]\nid = "m"\ngguf = "m.gguf"\nmmproj = "p.gguf"\n{extra}\n')
    with pytest.raises(CatalogError, match="mmproj"):
        Catalog.load(path)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": []})
        body = json.loads(request.content)
        seen.append(body)
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": "A cat."}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, content=payload, headers={"content-type": "text/event-stream"})

    with stub_server(answer) as server:
        catalog = tmp_path / "models.toml"
        catalog.write_text(CATALOG.format(url=server.base_url("up")))
        app = create_app(fake_settings(tmp_path, catalog_file=catalog))
        with TestClient(app) as test_client:
            sdk = openai.OpenAI(
                api_key="sk-test", base_url="http://testserver/v1", http_client=test_client
            )
            yield sdk, seen


def test_an_upstream_vision_model_gets_the_images(
    upstream: tuple[openai.OpenAI, list[dict[str, Any]]],
) -> None:
    sdk, seen = upstream
    uploaded = sdk.files.create(file=("cat.png", PNG), purpose="vision")
    response = sdk.responses.create(
        model="vlm",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PNG_URL, "detail": "low"},
                    {"type": "input_image", "file_id": uploaded.id, "detail": "auto"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "high",
                    },
                ],
            }
        ],
    )
    assert response.output_text == "A cat."
    content = seen[-1]["messages"][-1]["content"]
    assert content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "auto"}},  # the file, inlined
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
        },
    ]
    items = sdk.responses.input_items.list(response.id).data
    stored = items[0].model_dump()["content"]
    assert stored[2]["file_id"] == uploaded.id and stored[2]["image_url"] is None  # kept as sent
    follow = sdk.responses.create(
        model="vlm", input="And its color?", previous_response_id=response.id
    )
    assert follow.output_text == "A cat."
    assert seen[-1]["messages"][0]["content"][2]["image_url"]["url"] == PNG_URL  # the chain's image
    chat = sdk.chat.completions.create(
        model="vlm",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What?"},
                    {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
                ],
            }
        ],
    )
    assert chat.choices[0].message.content == "A cat."
    assert seen[-1]["messages"][0]["content"][1]["image_url"]["url"] == PNG_URL


def test_an_upstream_marked_text_only_refuses_images(
    upstream: tuple[openai.OpenAI, list[dict[str, Any]]],
) -> None:
    sdk, seen = upstream
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model="text-only", input=_image_input({"image_url": PNG_URL}))  # type: ignore[arg-type]
    assert refused.value.code == "unsupported_content_type"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(
            model="text-only",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}
            ],
        )
    assert seen == []  # nothing reached the upstream
