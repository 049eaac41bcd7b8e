"""An OpenAI-compatible server that misbehaves on purpose, run in a thread for live tests.

The model a request names picks the failure: ``bad-json`` streams an event that is not JSON,
``not-sse`` answers a stream request with plain JSON, ``cut`` ends its stream mid-answer,
``hang`` never answers, ``fail-500`` answers 500, ``refuse-400`` answers the platform's 400
envelope. It counts the requests each model got, so tests can see nothing ran twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.live.server import free_port


def _chunk(content: str) -> str:
    body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    body["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    return f"data: {json.dumps(body)}\n\n"


class BrokenUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.hits: Counter[str] = Counter()
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models),
            ]
        )
        config = uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})

    async def _chat(self, request: Request) -> Response:
        model = str((await request.json()).get("model"))
        self.hits[model] += 1
        if model == "hang":
            await asyncio.sleep(60)
        if model == "fail-500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if model == "refuse-400":
            error = {"message": "too long", "type": "invalid_request_error", "param": "messages"}
            return JSONResponse({"error": {**error, "code": "context_length_exceeded"}}, 400)
        if model == "not-sse":
            return JSONResponse({"choices": []})

        async def body() -> AsyncIterator[str]:
            yield _chunk("Hello")
            if model == "bad-json":
                yield "data: {not json\n\n"
            # "cut": the answer ends here, with no finish and no [DONE]

        return StreamingResponse(body(), media_type="text/event-stream")
