"""Server-sent events as the openai SDK parses them.

Every event is one ``data:`` line of JSON (plus an optional ``event:`` name); heartbeats are SSE
comments (``: keepalive``), which the SDK ignores; Chat and Completions streams end with
``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from pydantic import BaseModel
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Send

KEEPALIVE = b": keepalive\n\n"
DONE = b"data: [DONE]\n\n"


def sse_event(data: Any, event: str | None = None) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that sends a comment line whenever the body has been
    quiet for ``keepalive`` seconds (a long queue wait or prompt), so proxies keep it open.

    The keep-alive is a watchdog task that wakes once per interval, not a timeout around every
    chunk: a token costs one timestamp, not a task and a timer."""

    def __init__(
        self, body: AsyncIterator[bytes], keepalive: float, headers: dict[str, str]
    ) -> None:
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self.keepalive = keepalive
        self._last = 0.0
        self._sending = False

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        watchdog = asyncio.create_task(self._watch(send, loop))
        try:
            async for chunk in self.body_iterator:
                self._sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self._sending = False
                self._last = loop.time()
        finally:
            watchdog.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _watch(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            quiet = loop.time() - self._last
            if quiet < self.keepalive or self._sending:
                await asyncio.sleep(self.keepalive - quiet if not self._sending else self.keepalive)
                continue
            self._last = loop.time()
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})


def sse_response(
    body: AsyncIterator[bytes], keepalive: float = 15.0, headers: dict[str, str] | None = None
) -> StreamingResponse:
    return EventStream(
        body,
        keepalive,
        {"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})},
    )


def json_response(obj: BaseModel, headers: dict[str, str] | None = None) -> JSONResponse:
    """An SDK model as JSON, with exactly the fields that were set."""
    return JSONResponse(obj.model_dump(mode="json", exclude_unset=True), headers=headers)


async def primed(
    source: AsyncIterator[Any], started: asyncio.Event | None = None
) -> AsyncIterator[Any]:
    """Wait for the first item of ``source`` (so admission and prompt errors still become
    HTTP errors before any header is sent), then return an iterator over all its items.

    With ``started``, return as soon as it is set (the engine admitted the request), so the
    response headers go out while the prompt is computed, as the platform's do; an error
    after that arrives in the stream."""
    first = asyncio.ensure_future(source.__anext__())
    waiters: set[asyncio.Future[Any]] = {first}
    if started is not None:
        waiters.add(asyncio.ensure_future(started.wait()))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _cancel(first)
        await _aclose(source)
        raise
    finally:
        for waiter in waiters - {first}:
            waiter.cancel()
    if first.done() and first.exception() is not None:
        await _aclose(source)
        if not isinstance(first.exception(), StopAsyncIteration):
            first.result()  # raises

    async def chain() -> AsyncIterator[Any]:
        try:
            try:
                item = await first
            except StopAsyncIteration:
                return
            yield item
            async for item in source:
                yield item
        finally:
            await _cancel(first)
            await _aclose(source)

    return chain()


async def _cancel(task: asyncio.Future[Any]) -> None:
    if not task.done():
        task.cancel()
        with suppress(asyncio.CancelledError, StopAsyncIteration):
            await task


async def _aclose(source: AsyncIterator[Any]) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()


async def guard_stream(body: AsyncIterator[bytes], *, done: bool = True) -> AsyncIterator[bytes]:
    """Turn an error raised mid-stream into the in-band error event the SDK raises on."""
    from serverroom.errors import APIError

    try:
        async for chunk in body:
            yield chunk
    except APIError as exc:
        yield sse_event(exc.body())
        if done:
            yield DONE
    except Exception:
        import logging

        logging.getLogger("serverroom.stream").exception("stream failed")
        yield sse_event(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": "internal_error",
                }
            }
        )
        if done:
            yield DONE
