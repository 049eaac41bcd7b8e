"""Image inputs: Responses' ``input_image`` parts, their checks, and their Chat form.

An image is a ``data:`` URL (base64), an ``http(s)`` URL, or a ``file_id`` of the Files API,
with a ``detail`` (``auto`` by default). Only a model that takes images gets them: an upstream
model (unless its catalog entry says ``vision = false``) receives them as Chat ``image_url``
parts, files inlined as data URLs and other URLs passed on for the upstream to fetch under its
own policy. A local model with a multimodal projector gets their bytes (``image_data``); other
local models read text only, and an image for one is the platform's 400.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from typing import TYPE_CHECKING, Any

from serverroom.catalog import ModelEntry
from serverroom.errors import InvalidRequestError

if TYPE_CHECKING:
    from serverroom.context import AppContext

Item = dict[str, Any]
DETAILS = ("auto", "low", "high", "original")
_DATA_URL = re.compile(r"data:image/(png|jpeg|jpg|webp|gif);base64,[A-Za-z0-9+/=\s]+\Z", re.S)
_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


def image_part(image_url: str | None, file_id: str | None, detail: str | None, param: str) -> Item:
    """A client's ``input_image`` part, checked, in its stored form."""
    if (image_url is None) == (file_id is None):
        raise InvalidRequestError(
            f"Invalid '{param}': an input_image needs exactly one of 'image_url' or 'file_id'.",
            param=param,
            code="invalid_value",
        )
    if image_url is not None and not (
        _DATA_URL.match(image_url) or image_url.startswith(("http://", "https://"))
    ):
        raise InvalidRequestError(
            f"Invalid '{param}.image_url'. Expected a base64-encoded data URL with an image MIME"
            " type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), or an http(s) URL.",
            param=f"{param}.image_url",
            code="invalid_image_url",
        )
    if detail is not None and detail not in DETAILS:
        raise InvalidRequestError(
            f"Invalid value: '{detail}'. Supported values are: 'auto', 'low', 'high' and"
            " 'original'.",
            param=f"{param}.detail",
            code="invalid_value",
        )
    return {
        "type": "input_image",
        "image_url": image_url,
        "file_id": file_id,
        "detail": detail or "auto",
    }


def takes_images(entry: ModelEntry) -> bool:
    """An upstream model unless its entry says ``vision = false``; a local one with a
    projector (``vision`` true)."""
    return entry.vision is True or (entry.upstream is not None and entry.vision is None)


def check_images(entry: ModelEntry, history: list[Item], new: list[Item]) -> None:
    """The platform's 400 when images go to a model that reads text only (``param`` names
    the first image of this request's input, else the input as a whole)."""
    if takes_images(entry):
        return
    for index, item in enumerate(new):
        for number, part in enumerate(_parts(item)):
            if part.get("type") == "input_image":
                raise _refused(f"input[{index}].content[{number}].type")
    if any(p.get("type") == "input_image" for item in history for p in _parts(item)):
        raise _refused("input")


def _refused(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        "Content type 'input_image' is not supported by this model; only text parts are.",
        param=param,
        code="unsupported_content_type",
    )


def _parts(item: Item) -> list[Item]:
    content = item.get("content") if item.get("type") == "message" else None
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


async def inline_files(ctx: AppContext, project_id: str, items: list[Item]) -> list[Item]:
    """``items`` with every image given by ``file_id`` as a data URL (copies; the stored
    items keep their ids). An unknown file is the Files API's 404."""
    from serverroom.api.files.service import FileService

    service: FileService | None = None
    out = []
    for item in items:
        parts = _parts(item)
        if not any(p.get("type") == "input_image" and p.get("file_id") for p in parts):
            out.append(item)
            continue
        service = service or FileService(ctx)
        content = []
        for part in parts:
            if part.get("type") == "input_image" and part.get("file_id"):
                row = await service.get_row(project_id, part["file_id"])
                data = await service.content(project_id, part["file_id"])
                part = {**part, "image_url": data_url(data, row.filename)}
            content.append(part)
        out.append({**item, "content": content})
    return out


def data_url(data: bytes, filename: str) -> str:
    """Bytes as a data URL, typed by their magic number, else by the file's name."""
    kind = next((k for magic, k in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    kind = kind or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def chat_content(item: Item, text: str) -> str | list[Item]:
    """A message's Chat content: its text, or text and ``image_url`` parts if it has images."""
    parts = _parts(item)
    if not any(p.get("type") == "input_image" for p in parts):
        return text
    out: list[Item] = []
    for part in parts:
        if part.get("type") == "input_image":
            image = {"url": part.get("image_url"), "detail": part.get("detail") or "auto"}
            out.append({"type": "image_url", "image_url": image})
        elif part.get("text"):
            out.append({"type": "text", "text": part["text"]})
    return out
