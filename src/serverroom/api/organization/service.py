"""Shapes of the organization API: project and key objects, and usage/cost pages from the ledger.

Buckets are aligned to UTC multiples of their width (``1m``, ``1h``, ``1d``); every bucket of the
range is returned, empty ones included, ``limit`` buckets per page with ``next_page`` as the
cursor (the next bucket's start time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from serverroom.accounts.ledger import Ledger, Totals
from serverroom.accounts.repository import CreatedKey, KeyInfo, ProjectInfo
from serverroom.api.lists import list_body
from serverroom.errors import InvalidRequestError

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
DEFAULT_LIMIT = {"1m": 60, "1h": 24, "1d": 7}
MAX_LIMIT = {"1m": 1440, "1h": 168, "1d": 31}
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch")
COST_GROUPS = ("project_id", "line_item")


def project_object(p: ProjectInfo, tier: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "object": "organization.project",
        "name": p.name,
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "status": "archived" if p.archived_at else "active",
    }
    if tier is not None:
        out["tier"] = tier
    return out


def key_object(k: KeyInfo) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        "id": k.id,
        "name": k.name,
        "redacted_value": k.redacted_value,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "owner": {"type": "service_account", "service_account": None, "user": None},
        "revoked_at": k.revoked_at,
    }


def created_key_object(created: CreatedKey) -> dict[str, Any]:
    return {**key_object(created.info), "value": created.value}


def list_page(items: list[dict[str, Any]], limit: int, after: str | None) -> dict[str, Any]:
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return list_body(items[:limit], len(items) > limit)


def _check_groups(group_by: Sequence[str], allowed: Sequence[str]) -> list[str]:
    for group in group_by:
        if group not in allowed:
            raise InvalidRequestError(
                f"Invalid value for 'group_by': '{group}'. Allowed: {', '.join(allowed)}.",
                param="group_by",
                code="invalid_value",
            )
    return list(dict.fromkeys(group_by))


def _range(
    start_time: int, end_time: int | None, bucket_width: str, limit: int | None, page: str | None
) -> tuple[int, int, int, int, int]:
    """(page start, page end, overall end, width, limit) of the buckets to return."""
    if bucket_width not in WIDTHS:
        raise InvalidRequestError(
            f"Invalid value for 'bucket_width': '{bucket_width}'. Allowed: 1m, 1h, 1d.",
            param="bucket_width",
            code="invalid_value",
        )
    width = WIDTHS[bucket_width]
    count = limit or DEFAULT_LIMIT[bucket_width]
    if not 1 <= count <= MAX_LIMIT[bucket_width]:
        raise InvalidRequestError(
            f"Invalid value for 'limit': must be 1..{MAX_LIMIT[bucket_width]} for"
            f" bucket_width={bucket_width}.",
            param="limit",
            code="invalid_value",
        )
    end = end_time if end_time is not None else int(time.time()) + 1
    if end <= start_time:
        raise InvalidRequestError("'end_time' must be after 'start_time'.", param="end_time")
    first = start_time - start_time % width
    if page is not None:
        try:
            first = max(first, int(page))
        except ValueError as exc:
            raise InvalidRequestError("Invalid 'page' cursor.", param="page") from exc
    last = -(-end // width) * width
    page_end = min(last, first + count * width)
    return first, page_end, last, width, count


async def bucket_page(
    ledger: Ledger,
    *,
    kind: str,
    start_time: int,
    end_time: int | None,
    bucket_width: str,
    group_by: Sequence[str],
    limit: int | None,
    page: str | None,
    project_ids: Sequence[str],
    models: Sequence[str] = (),
    api_key_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """A ``page`` of usage (``kind="completions"``) or cost (``kind="costs"``) buckets."""
    groups = _check_groups(group_by, USAGE_GROUPS if kind == "completions" else COST_GROUPS)
    first, page_end, last, width, _ = _range(start_time, end_time, bucket_width, limit, page)
    stored = [g for g in groups if g != "user_id"]
    buckets = await ledger.buckets(
        start_time=first,
        end_time=page_end,
        width=width,
        group_by=stored,
        project_ids=project_ids,
        models=models,
        api_key_ids=api_key_ids,
    )
    data = []
    for bucket in buckets:
        results = [
            _result(kind, dict(zip(stored, key, strict=True)), totals, groups)
            for key, totals in sorted(bucket.groups.items(), key=lambda kv: str(kv[0]))
        ]
        data.append(
            {
                "object": "bucket",
                "start_time": bucket.start_time,
                "end_time": bucket.start_time + width,
                "results": results,
            }
        )
    has_more = page_end < last
    return {
        "object": "page",
        "data": data,
        "has_more": has_more,
        "next_page": str(page_end) if has_more else None,
    }


def _result(
    kind: str, key: dict[str, str | None], t: Totals, groups: Sequence[str]
) -> dict[str, Any]:
    if kind == "costs":
        return {
            "object": "organization.costs.result",
            "amount": {"value": round(t.cost_usd, 10), "currency": "usd"},
            "line_item": key.get("line_item"),
            "project_id": key.get("project_id"),
        }
    batch = key.get("batch")
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "input_cached_tokens": t.cached_tokens,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "output_reasoning_tokens": t.reasoning_tokens,
        "num_model_requests": t.requests,
        "project_id": key.get("project_id"),
        "user_id": None,
        "api_key_id": key.get("api_key_id"),
        "model": key.get("model"),
        "batch": None if batch is None else batch == "true",
    }
