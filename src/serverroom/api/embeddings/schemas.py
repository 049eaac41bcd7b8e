"""Request model of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidatorFunctionWrapHandler, field_validator

from serverroom.api.schemas import RequestModel


class EmbeddingRequest(RequestModel):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("input", mode="wrap")
    @classmethod
    def _input_is_a_string_or_an_array(
        cls, value: object, handler: ValidatorFunctionWrapHandler
    ) -> object:
        # Only the outer shape here: the items are checked by the service (api/embeddings/
        # inputs.py) within the request limits. Pydantic's union would copy a multi-megabyte
        # array and build one error per element for every member it rejects (gigabytes).
        if not isinstance(value, str | list):
            raise ValueError(
                "expected a string, an array of strings, an array of token ids"
                " or an array of token arrays"
            )
        return value

    @field_validator("user", mode="before")
    @classmethod
    def _user_is_a_string(cls, value: object) -> object:
        # Left out is fine; an explicit null is a 400, as on the platform.
        if value is None:
            raise ValueError("expected a string, got null")
        return value
