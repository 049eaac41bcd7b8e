"""Batch input lines: validating the JSONL file, and running one line through a service.

A line runs through the same service functions as the HTTP route of its endpoint (never over
HTTP): a validation error or ``APIError`` becomes that line's error response, with the status
code and error envelope the route would have answered.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from serverroom.api.batches.repository import LineUsage, PendingLine
from serverroom.api.errors import validation_error
from serverroom.context import Call
from serverroom.errors import APIError, InvalidRequestError
from serverroom.ids import new_id, request_id

logger = logging.getLogger("serverroom.batches")

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
MAX_LINES = 50_000
MAX_ERRORS = 100

MAX_CUSTOM_ID = 512  # characters (the column's width)


def _error(code: str, message: str, line: int | None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def parse_input(data: bytes, endpoint: str) -> tuple[list[PendingLine], str | None, list[Any]]:
    """Lines, the model they name, and file-level errors (empty when the file is valid)."""
    lines: list[PendingLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], None, [_error("invalid_file_format", "The file is not UTF-8 text.", None)]
    for number, raw in enumerate(text.splitlines(), start=1):
        if len(errors) >= MAX_ERRORS:
            break
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(
                _error("invalid_json_line", f"Line {number} is not valid JSON: {exc}", number)
            )
            continue
        if not isinstance(item, dict):
            errors.append(_error("invalid_json_line", "Each line must be a JSON object.", number))
            continue
        custom_id = item.get("custom_id")
        body = item.get("body")
        if not isinstance(custom_id, str) or not custom_id:
            errors.append(
                _error(
                    "missing_required_parameter",
                    "Each line needs a non-empty string 'custom_id'.",
                    number,
                    "custom_id",
                )
            )
            continue
        if len(custom_id) > MAX_CUSTOM_ID:
            errors.append(
                _error(
                    "invalid_value",
                    f"A custom_id may be at most {MAX_CUSTOM_ID} characters long;"
                    f" this one has {len(custom_id)}.",
                    number,
                    "custom_id",
                )
            )
            continue
        if custom_id in seen:
            errors.append(
                _error(
                    "duplicate_custom_id",
                    f"The custom_id '{custom_id}' appears more than once.",
                    number,
                    "custom_id",
                )
            )
            continue
        seen.add(custom_id)
        if str(item.get("method", "")).upper() != "POST":
            errors.append(_error("invalid_method", "The method must be 'POST'.", number, "method"))
            continue
        if item.get("url") != endpoint:
            errors.append(
                _error(
                    "invalid_url",
                    f"The url must be the batch's endpoint, '{endpoint}'.",
                    number,
                    "url",
                )
            )
            continue
        if not isinstance(body, dict):
            errors.append(
                _error("invalid_request", "Each line needs a JSON object 'body'.", number, "body")
            )
            continue
        line_model = body.get("model")
        if isinstance(line_model, str):
            if model is None:
                model = line_model
            elif line_model != model:
                errors.append(
                    _error(
                        "mismatched_model",
                        f"All requests in a batch must use the same model; expected '{model}'.",
                        number,
                        "body.model",
                    )
                )
                continue
        lines.append(PendingLine(number, custom_id, body))
    if not errors and not lines:
        errors.append(_error("empty_file", "The input file has no requests.", None))
    if len(lines) > MAX_LINES:
        errors.append(
            _error("too_many_requests", f"A batch may have at most {MAX_LINES} requests.", None)
        )
    return lines, model, errors


def _no_stream(body: dict[str, Any]) -> None:
    if body.get("stream"):
        raise InvalidRequestError(
            "Streaming is not supported in a batch.", param="stream", code="unsupported_parameter"
        )


async def _dispatch(call: Call, endpoint: str, body: dict[str, Any], rid: str) -> dict[str, Any]:
    if endpoint == "/v1/chat/completions":
        from serverroom.api.chat.schemas import ChatCompletionRequest
        from serverroom.api.chat.service import complete_chat, plan_chat
        from serverroom.api.chat.store import ChatStore

        _no_stream(body)
        chat = ChatCompletionRequest.model_validate(body)
        plan = await plan_chat(call, chat)
        completion = await complete_chat(plan, rid)
        await ChatStore(call.ctx, call.principal).keep(chat, completion)
        return completion.model_dump(mode="json", exclude_unset=True)
    if endpoint == "/v1/completions":
        from serverroom.api.completions.schemas import CompletionRequest
        from serverroom.api.completions.service import complete, plan_completion

        _no_stream(body)
        legacy = CompletionRequest.model_validate(body)
        cplan = await plan_completion(call, legacy)
        return (await complete(cplan, rid)).model_dump(mode="json", exclude_unset=True)
    if endpoint == "/v1/embeddings":
        from serverroom.api.embeddings.schemas import EmbeddingRequest
        from serverroom.api.embeddings.service import create_embeddings

        result, _ = await create_embeddings(call, EmbeddingRequest.model_validate(body))
        return result
    if endpoint == "/v1/responses":
        return await _responses(call, body, rid)
    raise InvalidRequestError(f"Unsupported batch endpoint {endpoint}.", param="url")


async def _responses(call: Call, body: dict[str, Any], rid: str) -> dict[str, Any]:
    """Hook for the Responses API (same path as its non-streaming route)."""
    from serverroom.api.responses.objects import dump
    from serverroom.api.responses.schemas import ResponseCreateRequest
    from serverroom.api.responses.service import plan_response, start_generation
    from serverroom.api.responses.stream import final_response, run_events

    _no_stream(body)
    if body.get("background"):
        raise InvalidRequestError(
            "'background' is not supported in a batch.",
            param="background",
            code="unsupported_parameter",
        )
    request = ResponseCreateRequest.model_validate(body)
    plan = await plan_response(call, request)
    response = await final_response(run_events(plan, await start_generation(plan, rid)))
    result: dict[str, Any] = dump(response)
    return result


async def run_line(
    call: Call, endpoint: str, line: PendingLine
) -> tuple[bool, dict[str, Any], LineUsage]:
    """Run one line as ``call`` (a batch call); (ok, the output/error-file line, its usage)."""
    rid = request_id()
    error: APIError
    try:
        body = await _dispatch(call, endpoint, line.body, rid)
    except ValidationError as exc:
        error = validation_error(RequestValidationError(exc.errors()))
    except APIError as exc:
        error = exc
    except Exception:
        logger.exception("batch line %s failed", line.custom_id)
        error = APIError("The server had an error while processing your request.")
    else:
        return True, _result(line, 200, rid, body), usage_of(body)
    return False, _result(line, error.status_code, rid, error.body()), LineUsage()


def _result(line: PendingLine, status: int, rid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("batch_req_", 12),
        "custom_id": line.custom_id,
        "response": {"status_code": status, "request_id": rid, "body": body},
        "error": None,
    }


def expired_result(line: PendingLine) -> dict[str, Any]:
    return {
        "id": new_id("batch_req_", 12),
        "custom_id": line.custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }


def usage_of(body: dict[str, Any]) -> LineUsage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return LineUsage()
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    return LineUsage(
        input_tokens=int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0),
        cached_tokens=int(details.get("cached_tokens", 0) or 0),
        output_tokens=int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0),
    )
