"""The route class of every API router: JSON bodies decoded off the event loop, and checked.

FastAPI decodes a JSON body with ``request.json()`` on the event loop; a body of a few
megabytes holds every other request for that long. ``CheckedRoute`` hands its endpoints a
``CheckedRequest`` whose ``json()`` decodes a large body in a worker thread and refuses what
cannot be served faithfully: invalid UTF-8, lone UTF-16 surrogates (``"\\ud800"``, which
Python's decoder accepts but UTF-8 cannot encode) and NUL characters (which PostgreSQL text
cannot store) are the platform's 400 "We could not parse the JSON body of your request.";
a body nested deeper than ``MAX_DEPTH`` is a 400 that says so.

A request model may name its top-level lists in ``list_limits`` (field, ``RequestLimits``
setting, what they are): an over-long list is refused right after decoding, before the body is
validated item by item (validating 20,000 messages would hold the loop for ~0.2 s).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from serverroom.api.common import check_count
from serverroom.errors import APIError

THREAD_ABOVE = 64 * 1024  # bytes: smaller bodies decode faster than a thread hand-off
MAX_DEPTH = 100  # nested objects and arrays; a strict schema has at most 10 levels (~25 here)
# NUL (PostgreSQL text cannot hold it) and lone UTF-16 surrogates (UTF-8 cannot encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def decode_json(body: bytes) -> Any:
    """The JSON value of a body; ``json.JSONDecodeError`` for anything but well-formed text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("invalid UTF-8", "", exc.start) from exc
    value = json.loads(text)
    _check_strings([value])
    stack = [(value, 0)] if isinstance(value, dict | list) else []
    while stack:  # iterative: a deeply nested body must not exhaust the recursion limit
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise TooDeepError(f"The request body is nested more than {MAX_DEPTH} levels deep.")
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        _check_strings(children)
        # Only containers go on the stack: an array of millions of numbers adds nothing to it.
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


def _check_strings(values: list[Any]) -> None:
    for item in values:
        if isinstance(item, str) and _UNSTORABLE.search(item):
            raise json.JSONDecodeError("NUL or a lone UTF-16 surrogate in a string", "", 0)


class TooDeepError(ValueError):
    """A body nested beyond ``MAX_DEPTH`` (JSON schemas that deep break every consumer)."""


class RefusedBody(HTTPException):
    """An ``APIError`` found while reading the body; FastAPI passes an ``HTTPException`` on as
    it is, and the error handler renders ``error``."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.status_code, detail=error.message)
        self.error = error


ListBound = tuple[str, int, str]  # a top-level list field, its most items, what they are


def check_lists(value: Any, bounds: Sequence[ListBound]) -> None:
    """Refuse a body whose named top-level lists are too long (a list of token ids is one
    prompt, not many)."""
    if not isinstance(value, dict):
        return
    for field, limit, what in bounds:
        items = value.get(field)
        if isinstance(items, list) and not (items and isinstance(items[0], int)):
            check_count(len(items), limit, param=field, what=what)


def list_bounds(model: Any, limits: Any) -> list[ListBound]:
    """A request model's ``list_limits`` with their values from the ``RequestLimits``."""
    declared: Sequence[tuple[str, str, str]] = getattr(model, "list_limits", ())
    return [(field, getattr(limits, setting), what) for field, setting, what in declared]


class CheckedRequest(Request):
    """A request whose JSON body is decoded by ``decode_json``, off the loop when large."""

    bounds: Sequence[ListBound] = ()

    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            body = await self.body()
            try:
                if len(body) > THREAD_ABOVE:
                    value = await asyncio.to_thread(decode_json, body)
                else:
                    value = decode_json(body)
                check_lists(value, self.bounds)
            except TooDeepError as exc:  # FastAPI passes an HTTPException on as it is
                raise HTTPException(400, detail=str(exc)) from exc
            except APIError as exc:
                raise RefusedBody(exc) from exc
            self._checked_json = value
        return self._checked_json


class CheckedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        model = self.body_field.field_info.annotation if self.body_field else None

        async def checked(request: Request) -> Response:
            checked_request = CheckedRequest(request.scope, request.receive)
            checked_request.bounds = list_bounds(model, request.app.state.context.settings.requests)
            return await handler(checked_request)

        return checked
