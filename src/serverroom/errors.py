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
    ├── ConflictError (409)
    ├── RequestTimeoutError (408, a body that does not arrive)
    ├── PayloadTooLargeError (413)
    ├── RateLimitError (429, code rate_limit_exceeded)
    ├── EngineError (500, code engine_error)
    └── ServiceUnavailableError (503)
        └── EngineOverloadedError (code engine_overloaded)

``body()`` is the envelope and ``status_code`` / ``headers`` the rest of the reply; the API
layer renders them (``serverroom.api.errors``), so engines and constraints raise these without
importing FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


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
