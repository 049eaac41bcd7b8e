"""Image bytes for local vision models (``api.image_data`` and Chat's ``api.chat.images``):
data URLs decoded under the size limit, images counted, URLs refused unless fetching is on,
and images placed where they stand in a message's text."""

from __future__ import annotations

import asyncio
import base64
from types import SimpleNamespace
from typing import Any

import pytest

from serverroom.api.chat.images import message_content
from serverroom.api.chat.schemas import ChatMessageIn
from serverroom.api.image_data import decode_data_url, fetch_image, load_images, with_images
from serverroom.engine.base import ChatMessage, ImageInput
from serverroom.errors import InvalidRequestError
from serverroom.settings import ImageSettings

URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG-bytes").decode()


def _ctx(**limits: Any) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(images=ImageSettings(**limits)))


def test_a_data_url_is_its_bytes_under_the_limit() -> None:
    assert decode_data_url(URL, ImageSettings(), "p") == b"\x89PNG-bytes"
    big = "data:image/png;base64," + base64.b64encode(b"x" * 2048).decode()
    with pytest.raises(InvalidRequestError) as caught:
        decode_data_url(big, ImageSettings(max_bytes=1024), "input[0].content[1].image_url")
    assert caught.value.code == "image_too_large"
    assert caught.value.param == "input[0].content[1].image_url"


def test_urls_are_refused_while_fetching_is_off() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(fetch_image("https://example.com/cat.png", ImageSettings(), "p.image_url"))
    assert caught.value.code == "invalid_image_url" and "file_id" in str(caught.value)


def test_a_request_holds_at_most_max_images() -> None:
    image = {"type": "input_image", "image_url": URL, "detail": "auto"}
    items = [{"type": "message", "role": "user", "content": [image, image]}]
    assert len(asyncio.run(load_images(_ctx(max_images=2), "proj", items))) == 1
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(load_images(_ctx(max_images=1), "proj", items))
    assert caught.value.code == "too_many_images"


def test_a_message_item_carries_its_images_where_they_stand() -> None:
    item = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "left "},
            {"type": "input_image", "image_url": URL, "detail": "auto"},
            {"type": "input_text", "text": "right"},
        ],
    }
    message = with_images(ChatMessage("user", "left right"), item)
    assert message.content == "left right"
    assert message.images == (ImageInput(b"\x89PNG-bytes", 5),)


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
    text, images = message_content(message, 0, {(0, 1): b"img"})
    assert (text, images) == ("see ", (ImageInput(b"img", 4),))
    with pytest.raises(InvalidRequestError) as caught:
        message_content(message, 0, None)
    assert caught.value.param == "messages[0].content[1].type"
    assert caught.value.code == "unsupported_content_type"
