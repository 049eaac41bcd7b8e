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
from typing import Any

import httpx

from serverroom.catalog import UpstreamSpec
from serverroom.errors import APIError, UpstreamError, UpstreamTimeoutError, relayed
from serverroom.upstream.pool import Member, Pool

logger = logging.getLogger("serverroom.upstream")

JSON = dict[str, Any]
DRAIN_SECONDS = 0.5  # how long the end of an answer may take after its [DONE]


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

    def __init__(self, pool: Pool, member: Member, response: httpx.Response) -> None:
        self.pool = pool
        self.member = member
        self.response = response
        self._closed = False

    async def chunks(self) -> AsyncIterator[JSON]:
        """Each ``data:`` event as JSON, until ``[DONE]`` or the end of the answer."""
        lines = self.response.aiter_lines()
        try:
            async for line in lines:
                if not line.startswith("data:"):
                    continue  # event names, comments, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    await _drain(lines)
                    return
                yield _chunk(data)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError("The upstream server stopped answering.") from exc
        except httpx.HTTPError as exc:
            self.pool.failed(self.member, repr(exc))
            raise UpstreamError(f"The upstream connection failed mid-answer: {exc!r}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self.member.inflight -= 1
            await self.response.aclose()


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read what follows ``[DONE]`` (normally nothing but the end of the body), so that the
    connection goes back to the pool; an upstream that holds the answer open is left."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in lines:
                pass


def _chunk(data: str) -> JSON:
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

    def __init__(self, spec: UpstreamSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.pool = Pool(spec)
        self.client = client
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def _timeout(self) -> httpx.Timeout:
        spec = self.spec
        return httpx.Timeout(spec.read_timeout, connect=spec.connect_timeout)

    def _request(
        self, url: str, body: JSON | bytes, content_type: str | None, request_id: str
    ) -> httpx.Request:
        headers = {**self.headers, "X-Request-ID": request_id} if request_id else self.headers
        if isinstance(body, bytes):
            headers = {**headers, "Content-Type": content_type or "application/octet-stream"}
            return self.client.build_request(
                "POST", url, content=body, headers=headers, timeout=self._timeout()
            )
        return self.client.build_request(
            "POST", url, json=body, headers=headers, timeout=self._timeout()
        )

    async def _send(
        self,
        path: str,
        body: JSON | bytes,
        *,
        affinity: str | None,
        request_id: str,
        stream: bool,
        content_type: str | None = None,
    ) -> tuple[Member, httpx.Response]:
        """The first member's answer that is not a failure before its first byte."""
        last: APIError = UpstreamError("No upstream server is configured.")
        for member in self.pool.candidates(affinity):
            request = self._request(f"{member.url}{path}", body, content_type, request_id)
            member.inflight += 1
            try:
                response = await self.client.send(request, stream=stream)
            except httpx.TimeoutException as exc:  # connected but silent: do not run it twice
                member.inflight -= 1
                if isinstance(exc, httpx.ConnectTimeout):
                    self.pool.failed(member, repr(exc))
                    last = UpstreamTimeoutError(f"The upstream server {member.url} timed out.")
                    continue
                self.pool.failed(member, repr(exc))
                raise UpstreamTimeoutError("The upstream server did not answer in time.") from exc
            except httpx.HTTPError as exc:
                member.inflight -= 1
                self.pool.failed(member, repr(exc))
                last = UpstreamError(f"The upstream server could not be reached: {exc!r}")
                continue
            if response.status_code < 400:
                self.pool.succeeded(member)
                return member, response
            raw = await response.aread()
            await response.aclose()
            member.inflight -= 1
            last = _error_of(response.status_code, raw)
            if response.status_code < 500:
                raise last
            self.pool.failed(member, f"answered {response.status_code}")
        raise last

    async def stream(
        self, path: str, body: JSON, *, affinity: str | None, request_id: str
    ) -> Stream:
        """Start a streamed request; returns once an upstream has accepted it."""
        member, response = await self._send(
            path, body, affinity=affinity, request_id=request_id, stream=True
        )
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            await response.aclose()
            member.inflight -= 1
            raise UpstreamError(
                f"The upstream server answered {kind or 'no content type'}, not an event stream."
            )
        return Stream(self.pool, member, response)

    async def post(self, path: str, body: JSON, *, affinity: str | None, request_id: str) -> JSON:
        """A JSON request and its JSON answer."""
        member, response = await self._send(
            path, body, affinity=affinity, request_id=request_id, stream=False
        )
        member.inflight -= 1
        try:
            answer = response.json()
        except ValueError as exc:
            raise UpstreamError("The upstream server answered with invalid JSON.") from exc
        if not isinstance(answer, dict):
            raise UpstreamError("The upstream server answered with unexpected JSON.")
        return answer

    async def forward(
        self, path: str, body: bytes, content_type: str, *, request_id: str
    ) -> httpx.Response:
        """A request passed on as it came (any content type); the upstream's whole answer."""
        member, response = await self._send(
            path,
            body,
            affinity=None,
            request_id=request_id,
            stream=False,
            content_type=content_type,
        )
        member.inflight -= 1
        return response

    async def probe(self) -> None:
        await self.pool.probe(self.client, self.headers)
