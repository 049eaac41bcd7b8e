"""The exception hierarchy of serverroom and the one handler that renders it.

Every error a client can see is an ``APIError`` rendered as the platform's envelope
``{"error": {"message", "type", "param", "code"}}`` with the status the openai SDK maps to the
right exception class::

    APIError (500 server_error)
    ├── InvalidRequestError (400 invalid_request_error)
    │   ├── ContextLengthExceededError (code context_length_exceeded)
    │   └── UnsupportedParameterError (code unsupported_parameter)
    ├── AuthenticationError (401, code invalid_api_key)
    ├── PermissionDeniedError (403)
    ├── NotFoundError (404)
    │   └── ModelNotFoundError (code model_not_found)
    ├── ConflictError (409)
    ├── RequestTimeoutError (408, a body that does not arrive)
    ├── PayloadTooLargeError (413)
    ├── RateLimitError (429, code rate_limit_exceeded)
    ├── EngineError (500, code engine_error)
    └── ServiceUnavailableError (503)
        └── EngineOverloadedError (code engine_overloaded)

FastAPI's request validation errors become 400s naming the offending ``param``; a value the
database refuses (``DataError``) a 400 that names no SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("serverroom.errors")


class APIError(Exception):
    """Base of every error rendered to clients."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The platform's error envelope."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceededError(InvalidRequestError):
    default_code = "context_length_exceeded"


class UnsupportedParameterError(InvalidRequestError):
    default_code = "unsupported_parameter"


class AuthenticationError(APIError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(APIError):
    status_code = 403
    error_type = "invalid_request_error"


class NotFoundError(APIError):
    status_code = 404
    error_type = "invalid_request_error"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
        )


class ConflictError(APIError):
    status_code = 409
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        # A state conflict the client cannot fix by retrying: tell the SDK not to retry.
        super().__init__(message, param=param, code=code, headers={"x-should-retry": "false"})


class RequestTimeoutError(APIError):
    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLargeError(APIError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class RateLimitError(APIError):
    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"


class EngineError(APIError):
    status_code = 500
    error_type = "server_error"
    default_code = "engine_error"


class ServiceUnavailableError(APIError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class EngineOverloadedError(ServiceUnavailableError):
    default_code = "engine_overloaded"


def error_response(exc: APIError) -> JSONResponse:
    """Render an ``APIError`` as a JSON response."""
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _param_from_loc(loc: Sequence[int | str]) -> str | None:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "json-or-python")) or "[" in part:
            continue  # pydantic's union branch labels are not parameter names
        else:
            name += f".{part}" if name else part
    return name or None


def validation_error(exc: RequestValidationError) -> InvalidRequestError:
    """Turn FastAPI's validation error into a platform-style 400."""
    errors = exc.errors()
    if not errors:
        return InvalidRequestError("Invalid request.")
    first = errors[0]
    param = _param_from_loc(first.get("loc", ()))
    if first.get("type") == "json_invalid" or (param is None and first.get("type") == "missing"):
        return InvalidRequestError(
            "We could not parse the JSON body of your request. (HINT: This likely means you"
            " aren't using your HTTP library correctly.)",
            param=None,
        )
    message = str(first.get("msg", "Invalid value"))
    if first.get("type") == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    return InvalidRequestError(
        f"Invalid value for '{param}': {message}", param=param, code="invalid_value"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the platform's envelope."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (404, 405):  # the platform: no such route, whatever the method
            err: APIError = NotFoundError(
                f"Invalid URL ({request.method} {request.url.path})", code="unknown_url"
            )
        else:
            text = str(exc.detail)
            err = InvalidRequestError(text) if 400 <= exc.status_code < 500 else APIError(text)
            return JSONResponse(err.body(), status_code=exc.status_code)
        return error_response(err)

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value from the request (a NUL byte, an over-long id or name
        # on PostgreSQL): the client's to fix, and the SQL is nobody's business.
        logger.warning("the database refused a request's value: %s", exc)
        return error_response(
            InvalidRequestError(
                "A value in the request cannot be stored: it is too long or holds a character"
                " that is not allowed (such as NUL)."
            )
        )

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
