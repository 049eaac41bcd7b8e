"""Work for a client that is still there: a non-streaming reply stops when its client leaves.

A streaming reply notices a closed connection at its next write; a non-streaming one writes
nothing until it is done, so without a watch an abandoned request (a client timeout, a closed
connection, the SDK retrying) would keep its engine slots generating to the end while the
retry queues behind it. ``while_connected`` runs the work beside a watch on the ASGI receive
channel (which yields ``http.disconnect`` once the body has been read and the client goes
away) and cancels the work when the client goes first: the generations end and free their
slots at the engine's next step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from contextlib import suppress
from typing import Any, TypeVar

from starlette.requests import Request

from serverroom.errors import APIError

T = TypeVar("T")


class ClientDisconnectedError(APIError, status=499, code="client_disconnected"):
    """The client closed the connection before the reply was ready (nobody reads this)."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def while_connected(request: Request, work: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """The result of ``work``, or ``ClientDisconnectedError`` once it is cancelled because the
    client went away first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            raise ClientDisconnectedError("The client closed the connection.")
    return task.result()
