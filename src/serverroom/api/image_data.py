"""The bytes of image inputs, for local vision models (an engine with a projector).

Before a local model's prompt is rendered, every image becomes bytes: a ``data:`` URL is
decoded, a Files API ``file_id`` is read, and an ``http(s)`` URL is downloaded only where the
operator allows it (``images.fetch_urls``), under a size and a time limit; otherwise it is the
platform's 400 ``invalid_image_url``. Rendered messages then carry their images as
``ImageInput``s at their places in the text.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import httpx

from serverroom.api.images import data_url
from serverroom.engine.base import ChatMessage, ImageInput
from serverroom.errors import InvalidRequestError
from serverroom.settings import ImageSettings

if TYPE_CHECKING:
    from serverroom.context import AppContext

Item = dict[str, Any]


def decode_data_url(url: str, limits: ImageSettings, param: str) -> bytes:
    """A ``data:`` URL's bytes (checked by ``api.images.image_part`` for its form)."""
    try:
        data = base64.b64decode(url.partition(",")[2], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise _invalid_url(param, "the base64 data could not be decoded") from exc
    return _sized(data, limits, param)


def _sized(data: bytes, limits: ImageSettings, param: str) -> bytes:
    if len(data) > limits.max_bytes:
        raise InvalidRequestError(
            f"Invalid '{param}': the image is {len(data)} bytes, over this server's limit of"
            f" {limits.max_bytes} bytes.",
            param=param,
            code="image_too_large",
        )
    return data


def _invalid_url(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid '{param}': {why}.", param=param, code="invalid_image_url")


async def fetch_image(url: str, limits: ImageSettings, param: str) -> bytes:
    """An ``http(s)`` image URL's bytes, if this server fetches URLs (a 400 if not, or if the
    download fails, is too big or too slow)."""
    if not limits.fetch_urls:
        raise _invalid_url(
            param,
            "this server does not download image URLs for local models; send the image as a"
            " base64 data URL or upload it and send its file_id",
        )
    try:
        async with (
            httpx.AsyncClient(timeout=limits.fetch_timeout) as client,
            client.stream("GET", url, follow_redirects=True) as reply,
        ):
            reply.raise_for_status()
            data = bytearray()
            async for piece in reply.aiter_bytes():
                data += piece
                if len(data) > limits.max_bytes:
                    return _sized(bytes(data), limits, param)
    except httpx.HTTPError as exc:
        raise InvalidRequestError(
            f"Error while downloading {url}.", param=param, code="invalid_image_url"
        ) from exc
    return bytes(data)


async def image_bytes(url: str, limits: ImageSettings, param: str) -> bytes:
    if url.startswith("data:"):
        return decode_data_url(url, limits, param)
    return await fetch_image(url, limits, param)


async def load_images(ctx: AppContext, project_id: str, items: list[Item]) -> list[Item]:
    """``items`` (copies where changed) with every ``input_image`` as a data URL, from a file
    or a download; at most ``images.max_images`` of them."""
    limits = ctx.settings.images
    count = 0
    out: list[Item] = []
    for index, item in enumerate(items):
        content = item.get("content") if item.get("type") == "message" else None
        if not isinstance(content, list) or not any(_is_image(p) for p in content):
            out.append(item)
            continue
        parts = []
        for number, part in enumerate(content):
            if _is_image(part):
                count += 1
                if count > limits.max_images:
                    raise InvalidRequestError(
                        f"Too many images: this server takes at most {limits.max_images} per"
                        " request.",
                        param="input",
                        code="too_many_images",
                    )
                param = f"input[{index}].content[{number}]"
                part = {**part, "image_url": await _as_data_url(ctx, project_id, part, param)}
            parts.append(part)
        out.append({**item, "content": parts})
    return out


def _is_image(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "input_image"


async def _as_data_url(ctx: AppContext, project_id: str, part: Item, param: str) -> str:
    from serverroom.api.files.service import FileService

    limits = ctx.settings.images
    if part.get("file_id"):
        service = FileService(ctx)
        row = await service.get_row(project_id, part["file_id"])
        data = _sized(await service.content(project_id, part["file_id"]), limits, param)
        return data_url(data, row.filename)
    url = str(part.get("image_url") or "")
    if url.startswith("data:"):
        decode_data_url(url, limits, f"{param}.image_url")  # the size limit
        return url
    data = await fetch_image(url, limits, f"{param}.image_url")
    return data_url(data, url.rsplit("/", 1)[-1])


def with_images(message: ChatMessage, item: Item) -> ChatMessage:
    """A rendered message item with its images (data URLs, see ``load_images``) at their
    places in its text."""
    content = item.get("content")
    if not isinstance(content, list) or not any(_is_image(p) for p in content):
        return message
    text, images = "", []
    for part in content:
        if _is_image(part):
            url = str(part.get("image_url") or "")
            data = base64.b64decode(url.partition(",")[2]) if url.startswith("data:") else b""
            if data:
                images.append(ImageInput(data, len(text)))
        elif part.get("type") == "refusal":
            text += str(part.get("refusal", ""))
        else:
            text += str(part.get("text", ""))
    return ChatMessage(message.role, text, message.extra, tuple(images))
