"""Log records carry the id of the request being served (the reply's ``x-request-id``), as
text or as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging

from fastapi.testclient import TestClient

from serverroom.observability.logs import JsonFormatter, RequestIdFilter
from serverroom.observability.requests import RequestInfo, current_request


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger("serverroom.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_json_line_names_its_request() -> None:
    logger, out = _capture(JsonFormatter())
    token = current_request.set(RequestInfo("req_abc", "GET", "/v1/models"))
    try:
        logger.info("hello %s", "there")
    finally:
        current_request.reset(token)
    logger.info("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "hello there" and first["request_id"] == "req_abc"
    assert first["level"] == "info" and first["logger"] == "serverroom.test-logs"
    assert "request_id" not in second


def test_the_id_in_the_logs_is_the_reply_header() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from serverroom.middleware import RequestContextMiddleware
    from serverroom.observability.logs import TEXT_FORMAT

    logger, out = _capture(logging.Formatter(TEXT_FORMAT))

    async def endpoint(request: object) -> PlainTextResponse:
        logger.info("working")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/work", endpoint)])
    app.add_middleware(RequestContextMiddleware)
    with TestClient(app) as client:
        reply = client.get("/work")
    rid = reply.headers["x-request-id"]
    assert rid and out.getvalue().rstrip().endswith(f"serverroom.test-logs [{rid}]: working")
