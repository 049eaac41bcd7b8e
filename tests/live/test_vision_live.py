"""Image inputs on a local vision model, live: a real ``serverroom serve`` whose catalog holds
the tiny test VLM (random weights, a real CLIP projector, see ``tests/engine/tiny_vlm``) with
its ``mmproj``, driven by the official SDK. An image reaches the model through the Responses
API (data URL, Files API id, a stored chain) and Chat Completions, and counts its 16 image
tokens in usage; image URLs are refused unless the operator lets the server fetch them; bytes
that are not an image are a 400. Answers are noise: tests check plumbing and token counts."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.engine.tiny_vlm import IMAGE_TOKENS, png, write_mmproj, write_text_model
from tests.live.server import LiveServer

pytestmark = pytest.mark.live

MODEL = "tiny-vlm"
PNG = png(seed=11)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _catalog(where: Path) -> Path:
    text = write_text_model(where / "text.gguf")
    mmproj = write_mmproj(where / "mmproj.gguf")
    catalog = where / "models.toml"
    catalog.write_text(
        f'[[model]]\nid = "{MODEL}"\ngguf = "{text}"\nmmproj = "{mmproj}"\ncontext_length = 512\n'
    )
    return catalog


def _server(where: Path, **env: str) -> LiveServer:
    settings = {
        "SERVERROOM_CATALOG_FILE": str(_catalog(where)),
        "SERVERROOM_DEFAULT_MODEL": MODEL,
        **env,
    }
    return LiveServer(where, env=settings, args=["--engine.slot_context", "512"])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    server = _server(tmp_path_factory.mktemp("vision"))
    with server.running():
        yield openai.OpenAI(base_url=server.base_url, api_key=server.api_key)


def _input(*image: dict[str, Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": "What is this?"}]
    content += [{"type": "input_image", **part} for part in image]
    return [{"role": "user", "content": content}]


def _responses_tokens(client: openai.OpenAI, *image: dict[str, Any]) -> int:
    response = client.responses.create(model=MODEL, input=_input(*image), max_output_tokens=16)
    assert response.status in ("completed", "incomplete")
    assert response.usage is not None
    return response.usage.input_tokens


def test_responses_read_an_image(client: openai.OpenAI) -> None:
    text_only = _responses_tokens(client)
    with_image = _responses_tokens(client, {"image_url": DATA_URL, "detail": "low"})
    assert with_image >= text_only + IMAGE_TOKENS
    counted = client.responses.input_tokens.count(
        model=MODEL,
        input=_input({"image_url": DATA_URL}),  # type: ignore[arg-type]
    )
    assert counted.input_tokens == with_image


def test_an_uploaded_image_is_the_same_image(client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=("cat.png", PNG, "image/png"), purpose="vision")
    by_file = _responses_tokens(client, {"file_id": uploaded.id})
    assert by_file == _responses_tokens(client, {"image_url": DATA_URL})


def test_a_stored_chain_keeps_its_image_in_the_cache(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input=_input({"image_url": DATA_URL}), max_output_tokens=4
    )
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, input="And now?", max_output_tokens=4
    )
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
    # the first turn's prompt, image and all, came from the KV cache
    assert second.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens - 1


def test_streamed_response_with_an_image(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL, input=_input({"image_url": DATA_URL}), max_output_tokens=4, stream=True
        )
    )
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")


def test_chat_reads_an_image(client: openai.OpenAI) -> None:
    def tokens(*parts: dict[str, Any]) -> int:
        content = [{"type": "text", "text": "What is this?"}, *parts]
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}], max_tokens=4
        )
        assert completion.usage is not None
        return completion.usage.prompt_tokens

    image = {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "high"}}
    assert tokens(image) >= tokens() + IMAGE_TOKENS


def test_image_urls_are_refused_unless_allowed(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=MODEL, input=_input({"image_url": "http://127.0.0.1:9/cat.png"})
        )
    assert caught.value.code == "invalid_image_url"
    assert caught.value.body["param"] == "input[0].content[1].image_url"  # type: ignore[index]


def test_bytes_that_are_not_an_image_are_a_400(client: openai.OpenAI) -> None:
    junk = "data:image/png;base64," + base64.b64encode(b"not a picture at all").decode()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": junk}}]}
            ],
        )
    assert caught.value.code == "invalid_image_format"


class _Images(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PNG if self.path == "/cat.png" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_operator_can_let_the_server_fetch_image_urls(
    tmp_path: Path,
) -> None:
    images = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{images.server_address[1]}"
    # the image server is on loopback: allowed only with fetch_private as well
    server = _server(
        tmp_path, SERVERROOM_IMAGES__FETCH_URLS="true", SERVERROOM_IMAGES__FETCH_PRIVATE="true"
    )
    try:
        with server.running():
            client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
            fetched = _responses_tokens(client, {"image_url": f"{url}/cat.png"})
            assert fetched == _responses_tokens(client, {"image_url": DATA_URL})
            with pytest.raises(openai.BadRequestError) as caught:
                _responses_tokens(client, {"image_url": f"{url}/missing.png"})
            assert caught.value.code == "invalid_image_url"
    finally:
        images.shutdown()
