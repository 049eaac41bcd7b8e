"""The route class of every API router: JSON bodies decoded off the event loop, and checked.

FastAPI decodes a JSON body with ``request.json()`` on the event loop; a body of a few
megabytes holds every other request for that long. ``CheckedRoute`` hands its endpoints a
``CheckedRequest`` whose ``json()`` decodes a large body in a worker thread and refuses what
cannot be served faithfully: invalid UTF-8, lone UTF-16 surrogates (``"\\ud800"``, which
Python's decoder accepts but UTF-8 cannot encode) and NUL characters (which PostgreSQL text
cannot store) are the platform's 400 "We could not parse the JSON body of your request.";
a body nested deeper than ``MAX_DEPTH`` is a 400 that says so.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

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
    stack = [(value, 0)]
    while stack:  # iterative: a deeply nested body must not exhaust the recursion limit
        item, depth = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise json.JSONDecodeError("NUL or a lone UTF-16 surrogate in a string", "", 0)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise TooDeepError(f"The request body is nested more than {MAX_DEPTH} levels deep.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


class TooDeepError(ValueError):
    """A body nested beyond ``MAX_DEPTH`` (JSON schemas that deep break every consumer)."""


class CheckedRequest(Request):
    """A request whose JSON body is decoded by ``decode_json``, off the loop when large."""

    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            body = await self.body()
            try:
                if len(body) > THREAD_ABOVE:
                    self._checked_json = await asyncio.to_thread(decode_json, body)
                else:
                    self._checked_json = decode_json(body)
            except TooDeepError as exc:  # FastAPI passes an HTTPException on as it is
                raise HTTPException(400, detail=str(exc)) from exc
        return self._checked_json


class CheckedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(CheckedRequest(request.scope, request.receive))

        return checked
