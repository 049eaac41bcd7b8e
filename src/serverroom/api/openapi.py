"""The published OpenAPI schema, corrected to what the server really sends.

FastAPI documents a 422 validation error on every operation with parameters; serverroom
never sends one (validation is the platform's 400). Every ``/v1`` operation instead documents
the platform's error envelope for the statuses it can answer with, and the bearer API key
every ``/v1`` route takes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ERRORS = {
    "400": "Invalid request (the platform's validation error)",
    "401": "Missing or invalid API key",
    "403": "The key may not do this",
    "404": "No such object, model or route",
    "429": "Rate limit reached (retry-after says when to retry)",
    "500": "Server error",
    "503": "Engine overloaded or model not ready (retry-after)",
}


def _errors() -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {status: {"description": text, "content": content} for status, text in ERRORS.items()}


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the corrected schema (built once, on first request)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        components.setdefault("securitySchemes", {})["ApiKey"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: Authorization: Bearer sk-...",
        }
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                if path.startswith("/v1/"):
                    responses.update({k: v for k, v in _errors().items() if k not in responses})
                    operation["security"] = [{"ApiKey": []}]
        for name in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(name, None)
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
