"""What the generation services share for upstream models: the upstream of an entry, the Chat
Completions body sent to it, and the estimates admission needs before the upstream counts.

An upstream model is served by its pool (``serverroom.upstream``) through the generation layer
(``generation.UpstreamChat``); what is serverroom's own stays here: stored state, limits and
billing. Fields only serverroom acts on (``store``, ``metadata``, ``service_tier``) are not
sent; every other field, including a client's ``extra_body``, is passed on.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from serverroom.catalog import ModelEntry
from serverroom.context import AppContext
from serverroom.errors import ServiceUnavailableError
from serverroom.generation import UpstreamChat
from serverroom.upstream import Upstream

JSON = dict[str, Any]

LOCAL_FIELDS = ("store", "metadata", "service_tier", "stream", "stream_options")
AFFINITY_CHARS = 4096  # how much of the conversation's start decides its member
DEFAULT_OUTPUT_RESERVE = 1024  # tokens reserved for a reply with no limit and no model default


def upstream_of(ctx: AppContext, entry: ModelEntry) -> Upstream:
    if ctx.upstreams is None:
        raise ServiceUnavailableError(f"The model `{entry.id}` has no upstream here.")
    return ctx.upstreams.for_entry(entry)


def estimate_tokens(messages: list[JSON]) -> int:
    """About how many tokens a conversation is (4 characters a token, 4 a message): what
    admission reserves until the upstream reports its count."""
    size = sum(len(json.dumps(m.get("content"), ensure_ascii=False)) for m in messages)
    return size // 4 + 4 * len(messages)


def affinity_key(messages: list[JSON], conversation: str | None = None) -> str:
    """The pool's affinity key: a conversation's id, else the start of the messages, so every
    later turn of a conversation (which repeats that start) goes where its prefix is cached."""
    if conversation:
        return conversation
    start = json.dumps(messages[:2], ensure_ascii=False, sort_keys=True)[:AFFINITY_CHARS]
    return hashlib.blake2b(start.encode(), digest_size=16).hexdigest()


def output_reserve(entry: ModelEntry, limit: int | None) -> int:
    return limit or entry.default_max_output_tokens or DEFAULT_OUTPUT_RESERVE


def chat_body(fields: JSON, model: str) -> JSON:
    """A streamed Chat Completions body for the upstream, with its usage asked for."""
    body = {k: v for k, v in fields.items() if k not in LOCAL_FIELDS and v is not None}
    body["model"] = model
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


def upstream_chat(
    ctx: AppContext, entry: ModelEntry, body: JSON, conversation: str | None = None
) -> UpstreamChat:
    assert entry.upstream is not None
    messages = body.get("messages") or []
    return UpstreamChat(
        upstream=upstream_of(ctx, entry),
        body=chat_body(body, entry.upstream.model),
        affinity=affinity_key(messages, conversation),
        prompt_tokens=estimate_tokens(messages),
    )
