"""Batches service: create, retrieve, list and cancel; the ``Batch`` object's shape.

The work itself is done by ``worker.BatchWorker``; this module only records intent (a new
batch in ``validating``, a cancel request in ``cancelling``) and wakes the worker.
"""

from __future__ import annotations

import time
from typing import Any

from serverroom.api.batches.lines import ENDPOINTS
from serverroom.api.batches.repository import CANCELLABLE, BatchRepository
from serverroom.api.batches.schemas import BatchCreateRequest
from serverroom.api.files.service import FileService
from serverroom.api.lists import list_body
from serverroom.context import AppContext
from serverroom.errors import ConflictError, InvalidRequestError, NotFoundError
from serverroom.ids import new_id
from serverroom.principal import Principal
from serverroom.storage.tables.batches import BatchRow

WINDOWS = {"24h": 24 * 3600}


def batch_object(row: BatchRow) -> dict[str, Any]:
    total_tokens = row.input_tokens + row.output_tokens
    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "errors": {"object": "list", "data": row.errors} if row.errors else None,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": row.created_at,
        "in_progress_at": row.in_progress_at,
        "expires_at": row.expires_at,
        "finalizing_at": row.finalizing_at,
        "completed_at": row.completed_at,
        "failed_at": row.failed_at,
        "expired_at": row.expired_at,
        "cancelling_at": row.cancelling_at,
        "cancelled_at": row.cancelled_at,
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "metadata": row.meta,
        "model": row.model,
        "usage": {
            "input_tokens": row.input_tokens,
            "input_tokens_details": {"cached_tokens": row.cached_tokens},
            "output_tokens": row.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": total_tokens,
        },
    }


def _not_found(batch_id: str) -> NotFoundError:
    return NotFoundError(
        f"No batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found"
    )


def _wake(ctx: AppContext, batch_id: str | None = None, cancel: bool = False) -> None:
    worker = ctx.batch_worker
    if worker is not None:
        if cancel and batch_id:
            worker.cancel(batch_id)
        worker.wake()


class BatchService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = BatchRepository(ctx.db)

    async def create(self, principal: Principal, request: BatchCreateRequest) -> dict[str, Any]:
        if request.endpoint not in ENDPOINTS:
            raise InvalidRequestError(
                f"Invalid value for 'endpoint': '{request.endpoint}'. Supported: "
                + ", ".join(ENDPOINTS)
                + ".",
                param="endpoint",
                code="invalid_value",
            )
        window = WINDOWS.get(request.completion_window)
        if window is None:
            raise InvalidRequestError(
                "Invalid value for 'completion_window': only '24h' is supported.",
                param="completion_window",
                code="invalid_value",
            )
        files = FileService(self.ctx)
        file_row = await files.repo.get(principal.project_id, request.input_file_id)
        if file_row is None:
            raise NotFoundError(
                f"No such File object: {request.input_file_id}",
                param="input_file_id",
                code="file_not_found",
            )
        if file_row.purpose != "batch":
            raise InvalidRequestError(
                f"The file {request.input_file_id} has purpose '{file_row.purpose}'; a batch"
                " input file must have purpose 'batch'.",
                param="input_file_id",
                code="invalid_file_purpose",
            )
        now = int(time.time())
        expiry = request.output_expires_after
        row = BatchRow(
            id=new_id("batch_", 12),
            project_id=principal.project_id,
            endpoint=request.endpoint,
            input_file_id=request.input_file_id,
            completion_window=request.completion_window,
            status="validating",
            created_at=now,
            expires_at=now + window,
            total=0,
            completed=0,
            failed=0,
            errors=None,
            meta=request.metadata,
            model=None,
            input_tokens=0,
            cached_tokens=0,
            output_tokens=0,
            output_expires_seconds=expiry.seconds if expiry else None,
        )
        await self.repo.insert(row)
        _wake(self.ctx)
        return batch_object(row)

    async def retrieve(self, principal: Principal, batch_id: str) -> dict[str, Any]:
        row = await self.repo.get(batch_id, principal.project_id)
        if row is None:
            raise _not_found(batch_id)
        return batch_object(row)

    async def list(self, principal: Principal, *, after: str | None, limit: int) -> dict[str, Any]:
        rows, has_more = await self.repo.page(principal.project_id, after=after, limit=limit)
        return list_body([batch_object(r) for r in rows], has_more)

    async def cancel(self, principal: Principal, batch_id: str) -> dict[str, Any]:
        row = await self.repo.get(batch_id, principal.project_id)
        if row is None:
            raise _not_found(batch_id)
        if row.status in ("cancelling", "cancelled"):
            return batch_object(row)
        changed = await self.repo.update(
            batch_id, only_from=CANCELLABLE, status="cancelling", cancelling_at=int(time.time())
        )
        if not changed:
            current = await self.repo.get(batch_id)
            status = current.status if current else row.status
            if status not in ("cancelling", "cancelled"):
                raise ConflictError(
                    f"Cannot cancel a batch with status '{status}'.", code="batch_not_cancellable"
                )
        _wake(self.ctx, batch_id, cancel=True)
        return await self.retrieve(principal, batch_id)
