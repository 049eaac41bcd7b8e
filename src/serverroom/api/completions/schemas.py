"""Request model for legacy Completions.

``prompt`` is checked here by hand rather than by pydantic's union: for a multi-megabyte token
array the union copies the array and builds one error per element for every member it rejects
(a 1,000,000-id array with one string in it made a 385 MB error and held 840 MB).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, ValidatorFunctionWrapHandler, field_validator

from serverroom.api.schemas import ListLimits, SamplingFields

Prompt = str | list[str] | list[int] | list[list[int]]
SHAPES = "a string, an array of strings, an array of token ids or an array of token arrays"


def _is_id(value: object) -> bool:
    return type(value) is int  # not bool, which JSON true would be


def _check_prompt(value: object) -> None:
    if isinstance(value, str) or value == []:
        return
    if not isinstance(value, list):
        raise ValueError(f"expected {SHAPES}")
    first = value[0]
    if _is_id(first):
        ok = all(_is_id(item) for item in value)
    elif isinstance(first, str):
        ok = all(isinstance(item, str) for item in value)
    else:
        ok = all(isinstance(item, list) and all(_is_id(i) for i in item) for item in value)
    if not ok:
        raise ValueError(f"expected {SHAPES}, not a mix")


class CompletionRequest(SamplingFields):
    list_limits: ClassVar[ListLimits] = (("prompt", "max_items", "prompts"),)

    model: str
    prompt: Prompt = "<|endoftext|>"
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=20)

    @field_validator("prompt", mode="wrap")
    @classmethod
    def _prompt_shape(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        _check_prompt(value)
        return value

    def prompts(self) -> list[str | list[int]]:
        """The prompt as a list of single prompts (text or token ids)."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            return []
        if all(isinstance(p, int) for p in prompt):
            return [list(prompt)]  # type: ignore[arg-type]
        return list(prompt)  # type: ignore[arg-type]
