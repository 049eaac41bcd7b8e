"""Compaction items: a summary that stands for the items before it.

A ``compaction`` item (made by ``POST /v1/responses/compact`` or by a response's
``context_management``) holds a summary of a conversation. Its ``encrypted_content`` is the
summary encoded, not encrypted: the server and the conversation are the operator's, and
clients treat the content as opaque. What a prompt keeps around one is ``compacted``'s rule.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

Item = dict[str, Any]
# A compaction item's content: this prefix, then its summary as URL-safe base64 of UTF-8.
COMPACTION_PREFIX = "srcmp1."
SUMMARY_HEAD = "Summary of the conversation so far (earlier messages were condensed into it):"


def compaction_content(summary: str) -> str:
    """A compaction item's ``encrypted_content`` for ``summary`` (encoded, not encrypted: the
    server and the conversation are the operator's; clients treat it as opaque)."""
    return COMPACTION_PREFIX + base64.urlsafe_b64encode(summary.encode()).decode()


def compaction_summary(content: str) -> str | None:
    """The summary in a compaction item's content (None if this server did not make it)."""
    if not content.startswith(COMPACTION_PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(content[len(COMPACTION_PREFIX) :].encode())
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def is_user_message(item: Item) -> bool:
    return item.get("type") == "message" and item.get("role") == "user"


def compacted(items: list[Item]) -> list[Item]:
    """What the model reads of ``items``: before the latest compaction item only the user's
    messages (the item's summary stands for the rest); without one, every item."""
    last = max((i for i, it in enumerate(items) if it.get("type") == "compaction"), default=-1)
    if last < 0:
        return items
    return [it for it in items[:last] if is_user_message(it)] + items[last:]


def summary_message(item: Item) -> str:
    """A compaction item as the model reads it (a system message)."""
    return f"{SUMMARY_HEAD}\n{compaction_summary(item['encrypted_content']) or ''}"
