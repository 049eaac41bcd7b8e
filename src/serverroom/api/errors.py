"""Rendering serverroom's errors over HTTP: the FastAPI exception handlers.

Every ``APIError`` (``serverroom.errors``) becomes a JSON response holding its envelope, with
its status code and headers. FastAPI's request validation errors become 400s naming the
offending ``param``; a route the platform does not have a 404 ``unknown_url``; a value the
database refuses (``DataError``) a 400 that names no SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serverroom.errors import APIError, InvalidRequestError, NotFoundError

logger = logging.getLogger("serverroom.errors")


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


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own HTTP errors (no such route, a body FastAPI could not read)."""
    error = getattr(exc, "error", None)  # an APIError carried through FastAPI's body parsing
    if isinstance(error, APIError):
        return error_response(error)
    if exc.status_code in (404, 405):  # the platform: no such route, whatever the method
        return error_response(
            NotFoundError(f"Invalid URL ({request.method} {request.url.path})", code="unknown_url")
        )
    text = str(exc.detail)
    err = InvalidRequestError(text) if 400 <= exc.status_code < 500 else APIError(text)
    return JSONResponse(err.body(), status_code=exc.status_code)


def _data_error(exc: DataError) -> JSONResponse:
    # The database refused a value from the request (a NUL byte, an over-long id or name on
    # PostgreSQL): the client's to fix, and the SQL is nobody's business.
    logger.warning("the database refused a request's value: %s", exc)
    return error_response(
        InvalidRequestError(
            "A value in the request cannot be stored: it is too long or holds a character"
            " that is not allowed (such as NUL)."
        )
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
        return _http_error(request, exc)

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DataError)
        return _data_error(exc)

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
