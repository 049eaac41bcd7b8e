"""Passing a request on to an upstream model's server, with auth, limits and usage.

The request's ``model`` (a JSON field or a multipart form field) picks the catalog entry,
which must be an upstream model; the model's name becomes the upstream's own, the rest goes
as it came. The request is admitted (RPM, and TPM on nothing but what it reports) before the
upstream is called, and the usage the upstream reports (``usage.input_tokens`` /
``output_tokens`` or ``prompt_tokens`` / ``completion_tokens``) is billed after.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.datastructures import UploadFile
from starlette.requests import Request

from serverroom.api.upstream import upstream_of
from serverroom.context import Call
from serverroom.errors import InvalidRequestError
from serverroom.metering import Usage
from serverroom.upstream import Answer

PATHS = (
    "/images/generations",
    "/images/edits",
    "/images/variations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
)


def _missing_model() -> InvalidRequestError:
    return InvalidRequestError(
        "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
    )


async def _read(request: Request) -> tuple[str, dict[str, Any] | None]:
    """The model a JSON or multipart request names, and the JSON body (None for multipart)."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        model = (await request.form()).get("model")
        if not isinstance(model, str):
            raise _missing_model()
        return model, None
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise InvalidRequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise _missing_model()
    return str(body["model"]), body


async def _encode(
    request: Request, body: dict[str, Any] | None, upstream_model: str
) -> tuple[bytes, str]:
    """The body for the upstream, its ``model`` renamed (multipart is encoded again)."""
    if body is not None:
        return json.dumps({**body, "model": upstream_model}).encode(), "application/json"
    form = await request.form()  # parsed once: starlette keeps it
    fields: dict[str, Any] = {}
    files = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, (value.filename, await value.read(), value.content_type)))
        else:
            fields.setdefault(name, []).append(value)
    fields["model"] = [upstream_model]
    encoded = httpx.Request("POST", "http://upstream", data=fields, files=files or None)
    return encoded.read(), encoded.headers["content-type"]


def _usage(response: Answer) -> Usage:
    if "json" not in response.headers.get("content-type", ""):
        return Usage(0, 0, 0)
    try:
        usage = response.json().get("usage") or {}
    except (ValueError, AttributeError):
        return Usage(0, 0, 0)
    if not isinstance(usage, dict):
        return Usage(0, 0, 0)
    given = int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
    made = int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
    return Usage(given, 0, made)


async def pass_on(call: Call, path: str, request: Request, request_id: str) -> Answer:
    """The upstream's answer to the request, admitted and billed."""
    model, body = await _read(request)
    entry = call.ctx.catalog.resolve(model)
    if entry.upstream is None:
        raise InvalidRequestError(
            f"The model `{entry.id}` does not support {path}.",
            param="model",
            code="model_not_supported",
        )
    ticket = await call.admit(entry, f"/v1{path}", prompt_tokens=0, max_output_tokens=0)
    try:
        content, kind = await _encode(request, body, entry.upstream.model)
        response = await upstream_of(call.ctx, entry).forward(
            path, content, kind, request_id=request_id
        )
    except BaseException:
        await ticket.settle(Usage(0, 0, 0))
        raise
    await ticket.settle(_usage(response))
    return response
