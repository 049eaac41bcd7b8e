"""Image inputs for local vision models (an engine with a projector): checked, then as data URLs.

Before a local model's prompt is rendered, every image becomes a base64 ``data:`` URL: a data
URL is kept, a Files API ``file_id`` is read, and an ``http(s)`` URL is downloaded only where
the operator allows it (``images.fetch_urls``; public addresses only unless
``images.fetch_private``), under a size and a time limit; otherwise it is the platform's 400
``invalid_image_url``. Each image's header is read (not the image: that happens off the event
loop, when the prompt is tokenized) to refuse formats the model cannot decode and sizes past
``images.max_pixels``. Only user messages carry images. Rendered messages then hold their
images as ``ImageInput``s at their places in the text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from serverroom.api.addresses import check_public_host
from serverroom.api.images import data_url
from serverroom.engine.base import ChatMessage, ImageInput
from serverroom.engine.image_header import HEAD_BYTES, read_header
from serverroom.errors import InvalidRequestError
from serverroom.settings import ImageSettings

if TYPE_CHECKING:
    from serverroom.context import AppContext

Item = dict[str, Any]


def check_image(head: bytes, size: int, limits: ImageSettings, param: str) -> None:
    """An image the model can decode, within the byte and pixel limits (from its header)."""
    if size > limits.max_bytes:
        raise InvalidRequestError(
            f"Invalid '{param}': the image is {size} bytes, over this server's limit of"
            f" {limits.max_bytes} bytes.",
            param=param,
            code="image_too_large",
        )
    header = read_header(head)
    if header is None:
        raise InvalidRequestError(
            "The image data you provided does not represent a valid image. Please check your"
            " input and try again with one of the formats this model reads (PNG, JPEG, GIF,"
            " BMP).",
            param=param,
            code="invalid_image_format",
        )
    if header.width * header.height > limits.max_pixels or not header.width * header.height:
        raise InvalidRequestError(
            f"Invalid '{param}': the image is {header.width}x{header.height} pixels; this"
            f" server takes at most {limits.max_pixels} pixels per image.",
            param=param,
            code="image_too_large",
        )


def check_data_url(url: str, limits: ImageSettings, param: str) -> None:
    """A ``data:`` URL's image, checked from its length and its decoded header only."""
    payload = "".join(url.partition(",")[2].split())
    head_chars = (HEAD_BYTES // 3) * 4
    try:
        head = base64.b64decode(payload[:head_chars])
    except (binascii.Error, ValueError) as exc:
        raise _invalid_url(param, "the base64 data could not be decoded") from exc
    check_image(head, len(payload) * 3 // 4, limits, param)


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
    if not limits.fetch_private:
        try:
            await check_public_host(url, param, "invalid_image_url")
        except InvalidRequestError as exc:
            if "public addresses" in exc.message:
                raise
            raise InvalidRequestError(
                f"Error while downloading {url}.", param=param, code="invalid_image_url"
            ) from exc
    try:
        async with asyncio.timeout(limits.fetch_timeout):
            data = await _download(url, limits, param)
    except (httpx.HTTPError, TimeoutError, _NotFetched) as exc:
        raise InvalidRequestError(
            f"Error while downloading {url}.", param=param, code="invalid_image_url"
        ) from exc
    check_image(data[:HEAD_BYTES], len(data), limits, param)
    return data


class _NotFetched(Exception):
    """The URL answered, but not with an image (a redirect, an error status)."""


async def _download(url: str, limits: ImageSettings, param: str) -> bytes:
    # No redirects (each hop would need the address check) and no proxy or .netrc from the
    # environment: the request goes where the client said, as nobody in particular.
    async with (
        httpx.AsyncClient(timeout=limits.fetch_timeout, trust_env=False) as client,
        client.stream("GET", url, follow_redirects=False) as reply,
    ):
        if not reply.is_success:
            raise _NotFetched(reply.status_code)
        data = bytearray()
        async for piece in reply.aiter_bytes():
            data += piece
            if len(data) > limits.max_bytes:
                check_image(bytes(data[:HEAD_BYTES]), len(data), limits, param)
    return bytes(data)


async def load_images(ctx: AppContext, project_id: str, items: list[Item]) -> list[Item]:
    """``items`` (copies where changed) with every ``input_image`` as a checked data URL, from
    a file or a download; at most ``images.max_images``, in user messages only."""
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
                param = f"input[{index}].content[{number}]"
                count += 1
                _check_place(item.get("role"), count, limits.max_images, param)
                part = {**part, "image_url": await _as_data_url(ctx, project_id, part, param)}
            parts.append(part)
        out.append({**item, "content": parts})
    return out


def _check_place(role: Any, count: int, most: int, param: str) -> None:
    if role != "user":
        raise InvalidRequestError(
            f"Invalid '{param}': images are supported in user messages only, not in"
            f" '{role}' messages.",
            param=param,
            code="unsupported_content_type",
        )
    if count > most:
        raise InvalidRequestError(
            f"Too many images: this server takes at most {most} per request.",
            param=param,
            code="too_many_images",
        )


def _is_image(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "input_image"


async def _as_data_url(ctx: AppContext, project_id: str, part: Item, param: str) -> str:
    from serverroom.api.files.service import FileService

    limits = ctx.settings.images
    if part.get("file_id"):
        service = FileService(ctx)
        row = await service.get_row(project_id, part["file_id"])
        data = await service.content(project_id, part["file_id"])
        check_image(data[:HEAD_BYTES], len(data), limits, f"{param}.file_id")
        return data_url(data, row.filename)
    return await as_data_url(str(part.get("image_url") or ""), limits, f"{param}.image_url")


async def as_data_url(url: str, limits: ImageSettings, param: str) -> str:
    """An image URL as a checked data URL (a data URL as it is; another one downloaded)."""
    if url.startswith("data:"):
        check_data_url(url, limits, param)
        return url
    data = await fetch_image(url, limits, param)
    return data_url(data, urlsplit(url).path.rsplit("/", 1)[-1])


def encoding_turn(ctx: AppContext, has_images: bool) -> AbstractAsyncContextManager[object]:
    """Where a prompt with images waits its turn to be rendered (its images are encoded then,
    one at a time per model): on the event loop, so waiting requests do not each hold one of
    the worker threads that all prompt rendering shares."""
    return ctx.image_prompts if has_images else nullcontext()


def has_images(items: list[Item]) -> bool:
    return any(
        _is_image(part)
        for item in items
        if item.get("type") == "message" and isinstance(item.get("content"), list)
        for part in item["content"]
    )


def with_images(message: ChatMessage, item: Item) -> ChatMessage:
    """A rendered user message item with its images (data URLs, see ``load_images``) at their
    places in its text; they are decoded when the prompt is tokenized."""
    content = item.get("content")
    if item.get("role") != "user" or not isinstance(content, list):
        return message
    if not any(_is_image(p) for p in content):
        return message
    text, images = "", []
    for part in content:
        if _is_image(part):
            url = str(part.get("image_url") or "")
            if url.startswith("data:"):
                images.append(ImageInput(b"", len(text), url=url))
        elif part.get("type") == "refusal":
            text += str(part.get("refusal", ""))
        else:
            text += str(part.get("text", ""))
    return ChatMessage(message.role, text, message.extra, tuple(images))
