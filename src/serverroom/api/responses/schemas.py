"""Request models of the Responses API (replies are the openai SDK's own types).

``input`` is accepted as a string or a list of raw item objects; ``items.parse_items`` validates
the items one by one so an error names the exact item (``input[2].content``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from serverroom.api.schemas import ListLimits, Metadata, RequestModel, StreamOptions


class ConversationRef(RequestModel):
    id: str


class ResponseContextFields(RequestModel):
    """The parameters that decide a response's prompt (shared with ``input_tokens``)."""

    list_limits: ClassVar[ListLimits] = (
        ("input", "max_items", "input items"),
        ("tools", "max_tools", "tools"),
    )

    model: str
    input: Any = None  # a string or a list of items; checked by ``items.normalize_input``
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None

    def conversation_id(self) -> str | None:
        if self.conversation is None:
            return None
        return self.conversation if isinstance(self.conversation, str) else self.conversation.id


class ContextManagement(RequestModel):
    """One ``context_management`` entry: compact once the prompt passes the threshold."""

    type: Literal["compaction"]
    compact_threshold: int | None = Field(None, ge=1)


class ResponseCreateRequest(ResponseContextFields):
    """``POST /v1/responses``."""

    context_management: list[ContextManagement] | None = Field(None, max_length=1)

    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: Metadata | None = None
    user: str | None = None
    safety_identifier: str | None = Field(None, max_length=64)
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: str | None = None
    include: list[str] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    background: bool | None = None


class InputTokensRequest(ResponseContextFields):
    """``POST /v1/responses/input_tokens``."""

    model: str


class ResponseCompactRequest(RequestModel):
    """``POST /v1/responses/compact``."""

    list_limits: ClassVar[ListLimits] = (("input", "max_items", "input items"),)

    model: str
    input: Any = None
    instructions: str | None = None
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: str | None = None

    def context(self) -> ResponseContextFields:
        """The fields that find the items to compact."""
        return ResponseContextFields(
            model=self.model,
            input=self.input,
            instructions=self.instructions,
            previous_response_id=self.previous_response_id,
        )
