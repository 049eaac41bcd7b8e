"""Calling an upstream model's servers: failover before the first byte, errors in the platform's
envelope, server-sent events read as JSON chunks.

A request goes to the pool's first candidate; a connect error or a 5xx before any byte of the
answer is retried on the next one (nothing was generated yet, so nothing is billed twice).
A 4xx is the upstream's verdict on the request and is relayed as it is. Once an answer has
started nothing is retried: a failure after that ends the stream with ``UpstreamError``.
Closing a stream closes the connection, so the upstream stops generating and frees its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from serverroom.catalog import UpstreamSpec
from serverroom.engine.base import GenerationObserver
from serverroom.errors import APIError, UpstreamError, UpstreamTimeoutError, relayed
from serverroom.upstream.pool import Member, Pool

logger = logging.getLogger("serverroom.upstream")

JSON = dict[str, Any]
DRAIN_SECONDS = 0.5  # how long the end of an answer may take after its [DONE]
READ_SIZE = 64 * 1024


class Connections:
    """The HTTP connections every upstream shares: one aiohttp session (C-parsed HTTP/1.1,
    keep-alive), made in the running event loop on first use. Cookies an upstream sets are
    not kept, so that one caller's never reach another's request."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.limit),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass
class Answer:
    """An upstream's whole answer to a passed-on request (header names in lower case)."""

    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.content)


def _error_of(status: int, raw: bytes) -> APIError:
    """The client's error for an upstream's error answer."""
    try:
        body = json.loads(raw)
        error = body["error"] if isinstance(body.get("error"), dict) else body
        message = str(error.get("message") or error.get("detail") or raw[:500].decode())
    except (ValueError, AttributeError, TypeError):
        body, error, message = None, {}, raw[:500].decode(errors="replace")
    if 400 <= status < 500 or status == 503:
        return relayed(
            status,
            message or f"The upstream server answered {status}.",
            error_type=error.get("type"),
            param=error.get("param"),
            code=error.get("code"),
        )
    return UpstreamError(f"The upstream server failed ({status}): {message}")


class Stream:
    """An upstream answer that has started: its JSON chunks, read as they arrive."""

    def __init__(self, pool: Pool, member: Member, response: aiohttp.ClientResponse) -> None:
        self.pool = pool
        self.member = member
        self.response = response
        self._closed = False

    async def chunks(self) -> AsyncIterator[JSON]:
        """Each ``data:`` event as JSON, until ``[DONE]`` or the end of the answer."""
        try:
            async for line in _lines(self.response.content):
                if not line.startswith(b"data:"):
                    continue  # event names, comments, blank separators
                data = line[5:].strip()
                if data == b"[DONE]":
                    await self._drain()
                    return
                yield _chunk(data)
        except TimeoutError as exc:
            raise UpstreamTimeoutError("The upstream server stopped answering.") from exc
        except aiohttp.ClientError as exc:
            self.pool.failed(self.member, repr(exc))
            raise UpstreamError(f"The upstream connection failed mid-answer: {exc!r}") from exc
        finally:
            await self.aclose()

    async def _drain(self) -> None:
        """Read what follows ``[DONE]`` (normally nothing but the end of the body), so that
        the connection goes back to the pool; an upstream that holds the answer open is left
        (its connection closed)."""
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with asyncio.timeout(DRAIN_SECONDS):
                while await self.response.content.read(READ_SIZE):
                    pass

    async def aclose(self) -> None:
        """Done with the answer: a connection read to its end is kept for the next request,
        one that is not is closed (so the upstream stops generating and frees its slot)."""
        if not self._closed:
            self._closed = True
            self.member.inflight -= 1
            if self.response.content.at_eof():
                self.response.release()
            else:
                self.response.close()


async def _lines(body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The body's lines (without their ends), of any length, as they arrive."""
    pending = b""
    while chunk := await body.read(READ_SIZE):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending


def _chunk(data: bytes) -> JSON:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise UpstreamError(f"The upstream server sent an invalid event: {data[:200]!r}") from exc
    if not isinstance(chunk, dict):
        raise UpstreamError(f"The upstream server sent an invalid event: {data[:200]!r}")
    if isinstance(chunk.get("error"), dict):
        message = chunk["error"].get("message") or "unknown error"
        raise UpstreamError(f"The upstream server failed mid-answer: {message}")
    return chunk


class Upstream:
    """One upstream model: its pool, and requests to it."""

    def __init__(
        self,
        spec: UpstreamSpec,
        connections: Connections,
        observer: GenerationObserver | None = None,
    ) -> None:
        self.spec = spec
        self.pool = Pool(spec)
        self.connections = connections
        self.observer = observer  # hears how each streamed generation went
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=spec.connect_timeout, sock_read=spec.read_timeout
        )

    async def _send(
        self,
        path: str,
        body: JSON | bytes,
        *,
        affinity: str | None,
        request_id: str,
        content_type: str | None = None,
    ) -> tuple[Member, aiohttp.ClientResponse]:
        """The first member's answer that is not a failure before its first byte."""
        if isinstance(body, bytes):
            data, kind = body, content_type or "application/octet-stream"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        headers = {**self.headers, "Content-Type": kind}
        if request_id:
            headers["X-Request-ID"] = request_id
        session = self.connections.session()
        last: APIError = UpstreamError("No upstream server is configured.")
        for member in self.pool.candidates(affinity):
            member.inflight += 1
            try:
                response = await session.post(
                    f"{member.url}{path}", data=data, headers=headers, timeout=self.timeout
                )
            except aiohttp.ConnectionTimeoutError as exc:  # never reached it: try the next
                member.inflight -= 1
                self.pool.failed(member, repr(exc))
                last = UpstreamTimeoutError(f"The upstream server {member.url} timed out.")
                continue
            except TimeoutError as exc:  # connected but silent: do not run it twice
                member.inflight -= 1
                self.pool.failed(member, repr(exc))
                raise UpstreamTimeoutError("The upstream server did not answer in time.") from exc
            except aiohttp.ClientError as exc:
                member.inflight -= 1
                self.pool.failed(member, repr(exc))
                last = UpstreamError(f"The upstream server could not be reached: {exc!r}")
                continue
            if response.status < 400:
                self.pool.succeeded(member)
                return member, response
            raw = await _whole(response)
            member.inflight -= 1
            last = _error_of(response.status, raw)
            if response.status < 500:
                raise last
            self.pool.failed(member, f"answered {response.status}")
        raise last

    async def stream(
        self, path: str, body: JSON, *, affinity: str | None, request_id: str
    ) -> Stream:
        """Start a streamed request; returns once an upstream has accepted it."""
        member, response = await self._send(path, body, affinity=affinity, request_id=request_id)
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            response.close()
            member.inflight -= 1
            raise UpstreamError(
                f"The upstream server answered {kind or 'no content type'}, not an event stream."
            )
        return Stream(self.pool, member, response)

    async def post(self, path: str, body: JSON, *, affinity: str | None, request_id: str) -> JSON:
        """A JSON request and its JSON answer."""
        member, response = await self._send(path, body, affinity=affinity, request_id=request_id)
        member.inflight -= 1
        raw = await _whole(response)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise UpstreamError("The upstream server answered with invalid JSON.") from exc
        if not isinstance(answer, dict):
            raise UpstreamError("The upstream server answered with unexpected JSON.")
        return answer

    async def forward(
        self, path: str, body: bytes, content_type: str, *, request_id: str
    ) -> Answer:
        """A request passed on as it came (any content type); the upstream's whole answer."""
        member, response = await self._send(
            path, body, affinity=None, request_id=request_id, content_type=content_type
        )
        member.inflight -= 1
        content = await _whole(response)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status, content, headers)

    async def probe(self) -> None:
        """Check every member once (``GET <base>/models``); mark each up or down."""
        session = self.connections.session()
        timeout = aiohttp.ClientTimeout(total=self.spec.connect_timeout)
        for member in self.pool.members:
            try:
                async with session.get(
                    f"{member.url}/models", headers=self.headers, timeout=timeout
                ) as reply:
                    await reply.read()
                    ok, why = reply.status == 200, f"health check answered {reply.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                ok, why = False, f"health check failed: {exc!r}"
            self.pool.checked(member, ok, why)


async def _whole(response: aiohttp.ClientResponse) -> bytes:
    """A whole (non-streamed) answer's body; its connection goes back to the pool."""
    try:
        return await response.read()
    except TimeoutError as exc:
        raise UpstreamTimeoutError("The upstream server stopped answering.") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"The upstream connection failed mid-answer: {exc!r}") from exc
    finally:
        response.release()
