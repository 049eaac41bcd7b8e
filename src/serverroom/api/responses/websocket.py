"""The Responses API's WebSocket mode (``client.responses.connect()``): ``wss://.../responses``.

A client sends ``response.create`` events (a create request's fields, streamed implicitly)
and receives each response's stream events as JSON messages, one response after another on
the connection; an event the server cannot serve is answered with an ``error`` event holding
the platform's envelope and HTTP status, and the connection stays open. ``stream_id`` is echoed
on every event of the response it names. Steering (``response.steer``) is refused with
``response.steer.failed`` (``steering_not_supported``), and ``background`` and
``generate: false`` with an error event.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from serverroom.api.errors import validation_error
from serverroom.api.responses.objects import dump
from serverroom.api.responses.schemas import ResponseCreateRequest
from serverroom.api.responses.service import plan_response, start_generation
from serverroom.api.responses.stream import close_events, run_events
from serverroom.api.routing import check_lists, decode_json, list_bounds
from serverroom.context import Call, context_of, principal_of
from serverroom.errors import APIError, InvalidRequestError
from serverroom.ids import new_id
from serverroom.principal import Principal

router = APIRouter(tags=["responses"])
_SOCKET_ONLY = ("type", "stream_id")


@router.websocket("/responses")
async def responses_socket(socket: WebSocket) -> None:
    await socket.accept()
    try:
        principal = await principal_of(socket)
    except APIError as exc:
        await socket.send_json(_error(exc, None))
        await socket.close(code=1008)
        return
    try:
        while True:
            await _serve(socket, principal, await socket.receive_text())
    except WebSocketDisconnect:
        return


async def _serve(socket: WebSocket, principal: Principal, text: str) -> None:
    """One client event: a response streamed back, or an error event."""
    stream_id: str | None = None
    try:
        event = decode_json(text.encode())
        if not isinstance(event, dict):
            raise InvalidRequestError("A WebSocket message must be a JSON object.", param=None)
        stream_id = event.get("stream_id") if isinstance(event.get("stream_id"), str) else None
        kind = event.get("type")
        if kind == "response.steer":
            await socket.send_json(_steer_failed(event))
            return
        if kind != "response.create":
            raise InvalidRequestError(
                f"Invalid value for 'type': {kind!r} is not a client event of this socket"
                " (send 'response.create').",
                param="type",
                code="invalid_value",
            )
        await _create(socket, principal, event, stream_id)
    except json.JSONDecodeError:
        error = InvalidRequestError("We could not parse the JSON of your message.", param=None)
        await socket.send_json(_error(error, stream_id))
    except APIError as exc:
        await socket.send_json(_error(exc, stream_id))


async def _create(
    socket: WebSocket, principal: Principal, event: dict[str, Any], stream_id: str | None
) -> None:
    ctx = context_of(socket)
    fields = {k: v for k, v in event.items() if k not in _SOCKET_ONLY}
    _refuse_unsupported(fields)
    fields.pop("stream", None)  # implicit over a socket
    check_lists(fields, list_bounds(ResponseCreateRequest, ctx.settings.requests))
    try:
        request = ResponseCreateRequest.model_validate(fields)
    except ValidationError as exc:
        raise validation_error(RequestValidationError(exc.errors())) from None
    plan = await plan_response(Call(ctx, principal), request)
    events = run_events(plan, await start_generation(plan, new_id("req_")))
    try:
        async for out in events:
            body = dump(out)
            if stream_id is not None:
                body["stream_id"] = stream_id
            await socket.send_json(body)
    finally:
        await close_events(events)  # a client gone mid-stream stops the generation


def _refuse_unsupported(fields: dict[str, Any]) -> None:
    if fields.get("background"):
        raise InvalidRequestError(
            "Background responses are not supported over WebSocket.",
            param="background",
            code="unsupported_value",
        )
    if fields.pop("generate", True) is False:
        raise InvalidRequestError(
            "'generate: false' is not supported on this server: send the input with the"
            " next response.create.",
            param="generate",
            code="unsupported_value",
        )


def _error(exc: APIError, stream_id: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "status": exc.status_code, **exc.body()}
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event


def _steer_failed(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "response.steer.failed",
        "sequence_number": 0,
        "error": {
            "code": "steering_not_supported",
            "message": "Steering is not supported on this server: send a new response.create.",
            "type": "invalid_request_error",
        },
        "steer": {
            "input": event.get("input"),
            "previous_response_id": event.get("previous_response_id"),
        },
    }
