"""ASGI middleware: a request id on every reply, request metrics, and a last-resort 500.

It wraps the whole application (outside FastAPI's own error middleware) so that even an
unexpected exception is answered with ``{"error": ...}`` and an ``x-request-id`` header, and the
server keeps serving. Each request is counted and timed once its reply is done, labelled with
its route's template and the model and project the work named (``observability.requests``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import nullcontext

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serverroom.api.errors import error_response
from serverroom.errors import PayloadTooLargeError, RequestTimeoutError
from serverroom.ids import request_id
from serverroom.observability.metrics import Metrics
from serverroom.observability.requests import RequestInfo, current_request
from serverroom.observability.tracing import Tracing

logger = logging.getLogger("serverroom.http")


class RequestContextMiddleware:
    """Assigns ``x-request-id``, times and counts the request, and turns crashes into 500
    envelopes."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics | None = None, tracing: Tracing | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id()
        scope.setdefault("state", {})["request_id"] = rid
        info = RequestInfo(rid, scope.get("method", ""), scope.get("path", ""))
        token = current_request.set(info)
        status = 500
        with self.tracing.request(info) if self.tracing else nullcontext() as span:
            try:
                status = await self._serve(scope, receive, send, info)
            finally:
                current_request.reset(token)
                template = self._template(scope)
                if self.tracing is not None:
                    self.tracing.request_done(span, info, template, status)
                self._count(template, info, status)

    def _count(self, template: str, info: RequestInfo, status: int) -> None:
        if self.metrics is None:
            return
        seconds = time.perf_counter() - info.started
        self.metrics.request_done(template, info.method, status, info.model, info.project, seconds)

    @staticmethod
    def _template(scope: Scope) -> str:
        """The matched route's path template as mounted (``/v1/responses/{response_id}``).
        Routing leaves the route as its router declared it (``/responses/{response_id}``), so
        the mount's prefix is the part of the path before what the route's pattern matches."""
        route = scope.get("route")
        pattern, local = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if pattern is None or local is None:
            return "unmatched"
        path = str(scope.get("path", ""))
        for at, char in enumerate(path):
            if char == "/" and pattern.match(path[at:]):
                return path[:at] + str(local)
        return str(local)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo) -> int:
        """Run the request; the reply's status."""
        rid, started = info.request_id, info.started
        response_started = False
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                ms = int((time.perf_counter() - started) * 1000)
                headers.append((b"openai-processing-ms", str(ms).encode()))
                headers.append((b"openai-version", b"2020-10-01"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if response_started:
                raise
            body = json.dumps(
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": "internal_error",
                    }
                }
            ).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        return status


class BodyLimitMiddleware:
    """Reads a request's body before the app sees it: over ``max_bytes`` it is a 413 (by its
    ``content-length`` at once, or as it arrives), and one that has not arrived whole within
    ``timeout`` seconds (a client trickling bytes to hold a connection) a 408 that closes the
    connection. Multipart uploads (files) stream to disk under their own, larger limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_multipart(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        try:
            if too_large:
                raise _too_large(self.max_bytes)
            messages = await asyncio.wait_for(self._read(receive), self.timeout)
        except PayloadTooLargeError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except TimeoutError:
            await error_response(_too_slow(self.timeout))(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> list[Message]:
        messages: list[Message] = []
        seen, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            more = message["type"] == "http.request" and bool(message.get("more_body"))
            if seen > self.max_bytes:
                raise _too_large(self.max_bytes)
        return messages


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _is_multipart(scope: Scope) -> bool:
    return (_header(scope, b"content-type") or "").lower().startswith("multipart/")


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is larger than this server accepts ({limit} bytes;"
        " requests.max_body_bytes)."
    )


def _too_slow(timeout: float) -> RequestTimeoutError:
    # The connection is closed after it: the rest of the body would otherwise be read and
    # dropped for as long as the client trickles it in, with no timeout left to end it.
    return RequestTimeoutError(
        f"The request body did not arrive within {timeout:g} seconds (requests.body_timeout).",
        headers={"connection": "close"},
    )
