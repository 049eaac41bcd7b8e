"""Image inputs for local vision models (``api.image_data``, Chat's ``api.chat.images``, and
``engine.image_header``): data URLs checked from their length and header (format, bytes,
pixels), images counted and kept to user messages, URLs refused unless fetching is on (and
then public addresses only), and images placed where they stand in a message's text."""

from __future__ import annotations

import asyncio
import base64
import struct
from types import SimpleNamespace
from typing import Any

import pytest

from serverroom.api.chat.images import message_content
from serverroom.api.chat.schemas import ChatMessageIn
from serverroom.api.image_data import check_data_url, fetch_image, load_images, with_images
from serverroom.engine.base import ChatMessage, ImageInput
from serverroom.engine.image_header import ImageHeader, read_header
from serverroom.errors import InvalidRequestError
from serverroom.settings import ImageSettings
from tests.engine.tiny_vlm import png

PNG = png(40, 30)
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def _ctx(**limits: Any) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(images=ImageSettings(**limits)))


def _code(call: Any) -> str | None:
    with pytest.raises(InvalidRequestError) as caught:
        call()
    return caught.value.code


def test_headers_give_format_and_size() -> None:
    assert read_header(PNG) == ImageHeader("png", 40, 30)
    assert read_header(b"GIF89a" + struct.pack("<HH", 7, 9)) == ImageHeader("gif", 7, 9)
    bmp = b"BM" + b"\0" * 16 + struct.pack("<ii", 5, -6)
    assert read_header(bmp) == ImageHeader("bmp", 5, 6)
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"\0" * 14
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 480, 640) + b"\0" * 10
    assert read_header(b"\xff\xd8" + app0 + sof) == ImageHeader("jpeg", 640, 480)
    assert read_header(b"RIFF\0\0\0\0WEBPVP8 ") is None  # not decoded locally
    assert read_header(b"just text") is None


def test_a_data_url_is_checked_without_decoding_it_whole() -> None:
    check_data_url(URL, ImageSettings(), "p")
    big = "data:image/png;base64," + base64.b64encode(PNG + b"\0" * 4096).decode()
    assert _code(lambda: check_data_url(big, ImageSettings(max_bytes=1024), "p")) == (
        "image_too_large"
    )
    assert _code(lambda: check_data_url(URL, ImageSettings(max_pixels=1000), "p")) == (
        "image_too_large"
    )
    text = "data:image/png;base64," + base64.b64encode(b"not a picture").decode()
    assert _code(lambda: check_data_url(text, ImageSettings(), "p")) == "invalid_image_format"


def test_urls_are_refused_while_fetching_is_off() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(fetch_image("https://example.com/cat.png", ImageSettings(), "p.image_url"))
    assert caught.value.code == "invalid_image_url" and "file_id" in str(caught.value)


def test_fetching_takes_public_addresses_only_unless_allowed() -> None:
    limits = ImageSettings(fetch_urls=True)
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(fetch_image("http://127.0.0.1:9/cat.png", limits, "p.image_url"))
    assert "public addresses" in str(caught.value)
    allowed = ImageSettings(fetch_urls=True, fetch_private=True, fetch_timeout=2)
    with pytest.raises(InvalidRequestError) as caught:  # allowed, but nothing listens there
        asyncio.run(fetch_image("http://127.0.0.1:9/cat.png", allowed, "p.image_url"))
    assert str(caught.value).startswith("Error while downloading")


def _message(role: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": list(parts)}


IMAGE = {"type": "input_image", "image_url": URL, "detail": "auto"}


def test_a_request_holds_at_most_max_images_in_user_messages() -> None:
    items = [_message("user", IMAGE, IMAGE)]
    assert len(asyncio.run(load_images(_ctx(max_images=2), "proj", items))) == 1
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(load_images(_ctx(max_images=1), "proj", items))
    assert caught.value.code == "too_many_images"
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(load_images(_ctx(), "proj", [_message("system", IMAGE)]))
    assert caught.value.code == "unsupported_content_type"
    assert caught.value.param == "input[0].content[0]"


def test_a_message_item_carries_its_images_where_they_stand() -> None:
    left, right = {"type": "input_text", "text": "left "}, {"type": "input_text", "text": "right"}
    message = with_images(ChatMessage("user", "left right"), _message("user", left, IMAGE, right))
    assert message.content == "left right"
    assert message.images == (ImageInput(b"", 5, url=URL),)
    assert message.images[0].read() == PNG  # decoded when the prompt is tokenized


def test_chat_parts_place_images_or_refuse_them() -> None:
    message = ChatMessageIn.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see "},
                {"type": "image_url", "image_url": {"url": URL}},
            ],
        }
    )
    text, images = message_content(message, 0, {(0, 1): URL})
    assert (text, images) == ("see ", (ImageInput(b"", 4, url=URL),))
    with pytest.raises(InvalidRequestError) as caught:
        message_content(message, 0, None)
    assert caught.value.param == "messages[0].content[1].type"
    assert caught.value.code == "unsupported_content_type"
