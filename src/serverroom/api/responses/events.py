"""Responses stream events: each event ``type`` built as its own SDK class.

The SDK's ``ResponseStreamEvent`` union has no pydantic discriminator, so validating against
the union tries every member (~40x slower per token); looking the class up by ``type`` first
avoids that.
"""

from __future__ import annotations

from typing import Any, cast, get_args

from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel


def _event_classes() -> dict[str, type[BaseModel]]:
    union = get_args(ResponseStreamEvent)[0]
    return {
        literal: cls
        for cls in get_args(union)
        for literal in get_args(cls.model_fields["type"].annotation)
    }


_EVENTS = _event_classes()


def stream_event(kind: str, sequence_number: int, **fields: Any) -> ResponseStreamEvent:
    """The SDK event of type ``kind`` with these fields."""
    data = {"type": kind, "sequence_number": sequence_number, **fields}
    return cast(ResponseStreamEvent, _EVENTS[kind].model_validate(data))
