"""A real HTTP server on a free loopback port, answering with a test's handler: what the
in-process upstream tests put behind a pool.

The handler sees an ``httpx.Request`` whose host is the first path segment (so one server
stands for several members: ``base_url("a")`` is ``http://127.0.0.1:<port>/a/v1``) and returns
an ``httpx.Response``, or ``None`` to hang (a silent upstream). The server runs in a thread of
its own, so it serves async tests and ``TestClient`` apps alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from aiohttp import web

Handler = Callable[[httpx.Request], httpx.Response | None]


class StubServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.BaseRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def base_url(self, host: str) -> str:
        return f"http://127.0.0.1:{self.port}/{host}/v1"

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        host, _, path = request.path.lstrip("/").partition("/")
        asked = httpx.Request(
            request.method,
            f"http://{host}/{path}",
            headers=dict(request.headers),
            content=await request.read(),
        )
        answer = self.handler(asked)
        if answer is None:
            await asyncio.sleep(3600)
            raise web.HTTPServiceUnavailable()
        kind = answer.headers.get("content-type", "application/octet-stream")
        return web.Response(
            status=answer.status_code, body=answer.content, headers={"Content-Type": kind}
        )

    async def _listen(self) -> None:
        self._runner = web.ServerRunner(web.Server(self._answer), shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
        finally:
            self._ready.set()
        self._loop.run_forever()

    def start(self) -> StubServer:
        self._thread.start()
        self._ready.wait(10)
        assert self.port, "the stub server did not start"
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._runner is not None
            hanging = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in hanging:  # silent handlers, still waiting
                task.cancel()
            await asyncio.gather(*hanging, return_exceptions=True)
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def stub_server(handler: Handler) -> Iterator[StubServer]:
    server = StubServer(handler).start()
    try:
        yield server
    finally:
        server.stop()


def dead_url() -> str:
    """A loopback base URL nothing listens on (connections to it are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
