"""The exception hierarchy of serverroom: plain exceptions, no web framework.

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
    ├── ExternalConnectorError (424: an MCP server could not be used)
    ├── ConflictError (409)
    ├── RequestTimeoutError (408, a body that does not arrive)
    ├── PayloadTooLargeError (413)
    ├── RateLimitError (429, code rate_limit_exceeded)
    ├── EngineError (500, code engine_error)
    ├── ServiceUnavailableError (503)
    │   └── EngineOverloadedError (code engine_overloaded)
    ├── UpstreamError (502, code upstream_error: an upstream server failed)
    ├── UpstreamTimeoutError (504, code upstream_timeout)
    └── RelayedError (an upstream server's own 4xx, with its status and envelope)

``body()`` is the envelope and ``status_code`` / ``headers`` the rest of the reply; the API
layer renders them (``serverroom.api.errors``), so engines and constraints raise these without
importing FastAPI.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar


class APIError(Exception):
    """Base of every error rendered to clients.

    A subclass states what differs from its base in its class line:
    ``class NotFoundError(APIError, status=404)``. The error ``type`` follows the status as on
    the platform (``invalid_request_error`` for a 4xx, ``server_error`` for a 5xx) unless
    ``error_type`` names another; ``code`` is the default ``code`` of the envelope.
    """

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
            cls.error_type = "invalid_request_error" if status < 500 else "server_error"
        if error_type is not None:
            cls.error_type = error_type
        if code is not None:
            cls.default_code = code

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


class InvalidRequestError(APIError, status=400):
    """A request the server cannot run as it is (a bad or missing parameter)."""


def check_choices(values: list[str], allowed: tuple[str, ...], param: str) -> None:
    """The platform's 400 ``invalid_value`` for the first of ``values`` not in ``allowed``."""
    for value in values:
        if value not in allowed:
            raise InvalidRequestError(
                f"Invalid value for '{param}': '{value}'. Supported values: "
                + ", ".join(allowed)
                + ".",
                param=param,
                code="invalid_value",
            )


class ContextLengthExceededError(InvalidRequestError, code="context_length_exceeded"):
    """The prompt, or prompt and output budget, exceed the model's context window."""


class UnsupportedParameterError(InvalidRequestError, code="unsupported_parameter"):
    """A parameter the platform accepts but this server does not implement."""


class AuthenticationError(APIError, status=401, code="invalid_api_key"):
    """No API key, or one the server does not know (or has revoked)."""


class PermissionDeniedError(APIError, status=403):
    """A request the caller may not make (an admin route without an admin key)."""


class NotFoundError(APIError, status=404):
    """No such object (in the caller's project)."""


class ModelNotFoundError(NotFoundError, code="model_not_found"):
    """A model the catalog does not serve."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
        )


class ExternalConnectorError(
    APIError, status=424, error_type="external_connector_error", code="http_error"
):
    """A server the request names (an MCP server) could not be used."""


class ConflictError(APIError, status=409):
    """The object's state forbids the request (a name in use, a batch past cancelling)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        # Retrying cannot help: tell the SDK not to retry.
        super().__init__(message, param=param, code=code, headers={"x-should-retry": "false"})


class RequestTimeoutError(APIError, status=408, code="request_timeout"):
    """A request body that did not arrive in time."""


class PayloadTooLargeError(APIError, status=413, code="payload_too_large"):
    """A request body (or upload) over the server's size limit."""


class RateLimitError(APIError, status=429, error_type="requests", code="rate_limit_exceeded"):
    """Over the project's requests-per-minute limit (the SDK retries after a while)."""


class InsufficientQuotaError(
    RateLimitError, error_type="insufficient_quota", code="insufficient_quota"
):
    """The project has spent its monthly limit (the SDK is told not to retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"x-should-retry": "false"})


class EngineError(APIError, code="engine_error"):
    """The engine failed while generating."""


class ServiceUnavailableError(APIError, status=503, code="service_unavailable"):
    """The server cannot serve the request now (a model loading, a shutdown, a feature off)."""


class EngineOverloadedError(ServiceUnavailableError, code="engine_overloaded"):
    """Every engine slot and queue place is taken (the SDK retries)."""


class UpstreamError(APIError, status=502, code="upstream_error"):
    """An upstream server failed, could not be reached, or answered with something that is
    not the OpenAI API (invalid JSON, a broken event stream)."""


class UpstreamTimeoutError(APIError, status=504, code="upstream_timeout"):
    """An upstream server did not answer in time."""


class RelayedError(APIError):
    """An upstream server's own error (a 4xx such as a context-length 400), relayed to the
    client with its status and envelope. Build one with ``relayed``."""

    error_type_of_upstream: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        envelope = super().body()
        envelope["error"]["type"] = self.error_type_of_upstream
        return envelope


@functools.cache
def _relayed_class(status: int) -> type[RelayedError]:
    return type(f"Relayed{status}", (RelayedError,), {}, status=status)


def relayed(
    status: int, message: str, *, error_type: str | None, param: str | None, code: str | None
) -> RelayedError:
    """The ``RelayedError`` for an upstream's error of ``status`` (one subclass per status)."""
    cls = _relayed_class(status)
    error = cls(message, param=param, code=code)
    error.error_type_of_upstream = error_type or cls.error_type
    return error
