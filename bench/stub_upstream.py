"""A minimal OpenAI-compatible upstream that answers every chat request with one token at once:
what ``upstream_overhead.py`` puts behind the gateways, so the latency measured is theirs.

    python bench/stub_upstream.py --port 9100

A bare ASGI app on uvicorn (no framework): ``POST /v1/chat/completions`` (streamed or not,
with usage) and ``GET /v1/models``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

USAGE = {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}
BASE = {"id": "chatcmpl-stub", "created": 0, "model": "stub", "system_fingerprint": None}


def _completion() -> bytes:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "Hi"},
        "finish_reason": "length",
        "logprobs": None,
    }
    body = {**BASE, "object": "chat.completion", "choices": [choice], "usage": USAGE}
    return json.dumps(body).encode()


def _stream() -> bytes:
    def chunk(choices: list[dict[str, Any]], usage: object = None) -> str:
        body = {**BASE, "object": "chat.completion.chunk", "choices": choices, "usage": usage}
        return f"data: {json.dumps(body)}\n\n"

    delta = {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
    end = {"index": 0, "delta": {}, "finish_reason": "length"}
    return (chunk([delta]) + chunk([end]) + chunk([], USAGE) + "data: [DONE]\n\n").encode()


COMPLETION, STREAM = _completion(), _stream()
MODELS = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/models"):
        body, kind = MODELS, b"application/json"
    else:
        request = json.loads(await _body(receive) or b"{}")
        streamed = bool(request.get("stream"))
        body = STREAM if streamed else COMPLETION
        kind = b"text/event-stream" if streamed else b"application/json"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
