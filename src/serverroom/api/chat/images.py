"""Chat ``image_url`` parts for a local vision model: checked, read into bytes, and placed in
the message's text (``ImageInput``); any other model's images are refused by the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from serverroom.api.chat.schemas import ChatCompletionRequest, ChatMessageIn
from serverroom.api.image_data import as_data_url
from serverroom.api.images import image_part
from serverroom.engine.base import ImageInput
from serverroom.errors import InvalidRequestError

if TYPE_CHECKING:
    from serverroom.context import AppContext

Images = dict[tuple[int, int], str]  # checked data URLs, by (message index, part index)


async def chat_images(ctx: AppContext, request: ChatCompletionRequest) -> Images:
    """Every ``image_url`` part as a checked data URL (other URLs downloaded if allowed);
    images go in user messages only."""
    limits = ctx.settings.images
    out: Images = {}
    for i, message in enumerate(request.messages):
        parts = message.content if isinstance(message.content, list) else []
        for j, part in enumerate(parts):
            if part.type != "image_url":
                continue
            param = f"messages[{i}].content[{j}]"
            if message.role != "user":
                raise InvalidRequestError(
                    f"Invalid '{param}': images are supported in user messages only, not in"
                    f" '{message.role}' messages.",
                    param=f"{param}.type",
                    code="unsupported_content_type",
                )
            if len(out) >= limits.max_images:
                raise InvalidRequestError(
                    f"Too many images: this server takes at most {limits.max_images} per request.",
                    param=param,
                    code="too_many_images",
                )
            spec = part.image_url or {}
            url = spec.get("url") if isinstance(spec.get("url"), str) else None
            if url is None:
                raise InvalidRequestError(
                    f"Missing required parameter: '{param}.image_url.url'.",
                    param=f"{param}.image_url.url",
                    code="missing_required_parameter",
                )
            image_part(url, None, spec.get("detail"), f"{param}.image_url")  # its form
            out[(i, j)] = await as_data_url(url, limits, f"{param}.image_url.url")
    return out


def message_content(
    message: ChatMessageIn, index: int, images: Images | None
) -> tuple[str, tuple[ImageInput, ...]]:
    """A message's text and images; a part other than text (or, with ``images``, an image)
    is the platform's 400 for a model that does not read it."""
    if not isinstance(message.content, list):
        return message.text(), ()
    text, placed = "", []
    for j, part in enumerate(message.content):
        if part.type == "text":
            text += part.text or ""
        elif part.type == "image_url" and images is not None and (index, j) in images:
            placed.append(ImageInput(b"", len(text), url=images[(index, j)]))
        else:
            raise InvalidRequestError(
                f"Content type '{part.type}' is not supported by this model; only text"
                + (" and image_url" if images is not None else "")
                + " parts are.",
                param=f"messages[{index}].content[{j}].type",
                code="unsupported_content_type",
            )
    return text, tuple(placed)
