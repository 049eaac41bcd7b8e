"""uvicorn's HTTP/1.1 protocol with a read timeout on a request's line and headers.

uvicorn times out only the idle gap between two requests on a keep-alive connection
(``timeout_keep_alive``: armed when a response completes, cancelled by the next byte that
arrives). A connection that has sent nothing yet, or part of a request line and headers
(``POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\n`` and then nothing, or one byte every
few seconds: slowloris), is held open forever, and enough of them exhaust the process's file
descriptors. The body has its own limit (``requests.body_timeout``, in the middleware).

``http_protocol(timeout)`` is the class to hand to uvicorn (``http=``): uvicorn's own choice
(httptools if it is installed, else h11) with a deadline for the headers. It is armed when a
connection is made and again when a keep-alive connection receives the first byte of its next
request; the deadline is not moved by later bytes, and it is cancelled once the headers are
complete, so a request being served (a long generation, a stream) is never timed out by it.
At the deadline a connection that sent part of a request is answered ``408`` with the
platform's error envelope and closed; one that sent nothing is closed silently, as uvicorn
closes an idle keep-alive connection (a client may be sending a request at that very moment,
and must not read an answer to a request it never made).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from typing import ClassVar, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from serverroom.errors import RequestTimeoutError

logger = logging.getLogger("serverroom.http")


class HeaderTimeout(asyncio.Protocol):
    """Mixin over a uvicorn HTTP protocol: closes a connection whose request line and headers
    are not complete within ``header_timeout`` seconds (408 if part of a request arrived).

    A subclass names its parser's state in ``_awaiting_headers``; it must put this class
    before uvicorn's protocol in its bases."""

    header_timeout: ClassVar[float] = 10.0
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    server_state: ServerState
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing() or not self._awaiting_headers():
            self._cancel_header_timer()
            return
        if self._header_timer is None:  # the first byte of a keep-alive connection's next request
            self._arm_header_timer()
        self._header_bytes = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        """Whether the connection is reading a request's line and headers (no request of it
        is being served): the parser's state, per implementation."""
        raise NotImplementedError

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout, self._on_header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._header_bytes = False

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._awaiting_headers():
            return
        if self._header_bytes:
            peer = self.transport.get_extra_info("peername") or ("?", 0)
            logger.info(
                "%s:%s - request headers incomplete after %gs: 408",
                *peer[:2],
                self.header_timeout,
            )
            self.transport.write(timeout_reply(self.header_timeout, self.server_state))
        self.transport.close()


def timeout_reply(timeout: float, server_state: ServerState | None = None) -> bytes:
    """The whole ``408`` reply, written as bytes: no request was parsed to answer through the
    protocol's own machinery. It carries uvicorn's default headers (``date``, ``server``)."""
    error = RequestTimeoutError(
        f"The request headers did not arrive within {timeout:g} seconds (requests.header_timeout)."
    )
    body = json.dumps(error.body(), separators=(",", ":")).encode()  # as JSONResponse's
    defaults = server_state.default_headers if server_state is not None else []
    headers = [
        *defaults,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return b"HTTP/1.1 408 Request Timeout\r\n" + head + b"\r\n" + body


class H11HeaderTimeout(HeaderTimeout, H11Protocol):
    """uvicorn's h11 protocol with the header timeout."""

    def _awaiting_headers(self) -> bool:
        # h11 leaves IDLE when a request's headers are parsed, and returns to it only when
        # both the request and its response are done (a new cycle on a keep-alive connection).
        return self.conn.their_state is h11.IDLE


def _httptools_protocol() -> type[HeaderTimeout]:
    """uvicorn's httptools protocol with the header timeout (imported only when installed)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsHeaderTimeout(HeaderTimeout, HttpToolsProtocol):
        """uvicorn's httptools protocol with the header timeout."""

        _in_headers = True  # between a message's first byte and its complete headers

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()

        def _awaiting_headers(self) -> bool:
            # A pipelined request's headers may arrive while one is served: not timed here.
            idle = self.cycle is None or self.cycle.response_complete
            return self._in_headers and idle

    return HttpToolsHeaderTimeout


def base_protocol() -> type[HeaderTimeout]:
    """The implementation uvicorn's ``http="auto"`` would pick: httptools if installed."""
    if importlib.util.find_spec("httptools") is not None:
        return _httptools_protocol()
    return H11HeaderTimeout


def http_protocol(
    header_timeout: float, base: type[HeaderTimeout] | None = None
) -> type[HeaderTimeout]:
    """The protocol class for ``uvicorn.run(http=...)``, timing out headers after
    ``header_timeout`` seconds (``base``: an implementation, default ``base_protocol()``)."""
    base = base or base_protocol()
    attrs = {"header_timeout": header_timeout, "__doc__": base.__doc__}
    return cast(type[HeaderTimeout], type(base.__name__, (base,), attrs))
