"""Request models for Chat Completions (responses are the openai SDK's own types)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from serverroom.api.schemas import ListLimits, Metadata, RequestModel, SamplingFields


class ContentPart(RequestModel):
    type: str
    text: str | None = None
    image_url: dict[str, Any] | None = None  # {"url": data or http(s) URL, "detail"?}


class FunctionCall(RequestModel):
    name: str
    arguments: str


class CustomCall(RequestModel):
    name: str
    input: str


class ToolCall(RequestModel):
    id: str
    type: Literal["function", "custom"] = "function"
    function: FunctionCall | None = None
    custom: CustomCall | None = None

    @model_validator(mode="after")
    def _body(self) -> ToolCall:
        if (self.function if self.type == "function" else self.custom) is None:
            raise ValueError(f"a '{self.type}' tool call needs '{self.type}'")
        return self


class ChatMessageIn(RequestModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _role_fields(self) -> ChatMessageIn:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("messages with role 'tool' must have a 'tool_call_id'")
        if self.content is None and self.role != "assistant":
            raise ValueError(f"messages with role '{self.role}' must have 'content'")
        return self

    def text(self) -> str:
        """The message's text; non-text parts are rejected by the service."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)


class FunctionDef(RequestModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(RequestModel):
    type: Literal["function", "custom"]
    function: FunctionDef | None = None
    custom: dict[str, Any] | None = None  # name, description, format (see custom_spec)

    @model_validator(mode="after")
    def _body(self) -> ToolDef:
        if (self.function if self.type == "function" else self.custom) is None:
            raise ValueError(f"a '{self.type}' tool needs '{self.type}'")
        return self


class ChatCompletionRequest(SamplingFields):
    list_limits: ClassVar[ListLimits] = (
        ("messages", "max_items", "messages"),
        ("tools", "max_tools", "tools"),
    )

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: Metadata | None = None
    store: bool | None = None
    response_format: dict[str, Any] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None

    @model_validator(mode="after")
    def _logprobs_pair(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("'top_logprobs' requires 'logprobs' to be true")
        return self

    def output_limit(self) -> int | None:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens

    def output_limit_param(self) -> str:
        """The field that set :meth:`output_limit`, for error messages."""
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"


class ChatCompletionUpdateRequest(RequestModel):
    """``POST /chat/completions/{id}``: only ``metadata`` can change (null clears it)."""

    metadata: Metadata | None
