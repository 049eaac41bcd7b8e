"""Background responses: asyncio tasks inside the server, cancellation, and restart recovery.

A background response is stored ``queued`` at once and run by a task kept in
``ctx.response_tasks``; its events go to an ``EventLog`` that a streaming client follows.

Replicas share the database, so a running response is owned through a lease: its row names
the replica (``ctx.replica_id``) and a time the replica's heartbeat keeps moving. Every replica
sweeps: a response whose lease ran out (its replica died) is marked failed, within
``replicas.lease_seconds`` plus a heartbeat; a live replica's responses are never touched. On
shutdown a replica cancels its runs and marks them failed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from openai.types.responses import Response

from serverroom.api.responses.objects import ResponsePlan, dump, response_object
from serverroom.api.responses.replay import EventLog, open_log
from serverroom.api.responses.repository import ACTIVE, ResponseRepository
from serverroom.api.responses.service import settle, start_generation
from serverroom.api.responses.stream import TERMINAL, run_events
from serverroom.api.webhooks.service import emit_event
from serverroom.context import AppContext
from serverroom.errors import APIError, InvalidRequestError
from serverroom.principal import Principal

logger = logging.getLogger("serverroom.responses")


async def start_background(plan: ResponsePlan, request_id: str) -> Response:
    """Store the response as ``queued`` and start its task (its events go to a new log).

    The run belongs to the server, not to the request: a client streaming it may disconnect
    and the run still ends (completed, failed or cancelled) and is stored.
    """
    queued = response_object(plan, "queued")
    ctx = plan.ctx
    lease = (ctx.replica_id, now_ms() + int(ctx.settings.replicas.lease_seconds * 1000))
    repo = ResponseRepository(ctx.db)
    await repo.save(plan.principal.project_id, dump(queued), plan.input_items, lease=lease)
    log = open_log(plan.ctx, plan.response_id)  # before the task runs: a stream follows it now
    tasks = plan.ctx.response_tasks
    task = asyncio.create_task(_run(plan, request_id, log), name=f"response {plan.response_id}")
    tasks[plan.response_id] = task
    task.add_done_callback(lambda _: tasks.pop(plan.response_id, None))
    return queued


def _log_failure(log: EventLog, failed: dict[str, Any]) -> None:
    """End a followed stream whose run raised with ``response.failed``."""
    if any(event["type"] in TERMINAL for event in log.events):
        return
    if not log.events:
        started = {**failed, "status": "in_progress", "error": None}
        log.append({"type": "response.created", "sequence_number": 0, "response": started})
    log.append({"type": "response.failed", "sequence_number": len(log.events), "response": failed})


async def _run(plan: ResponsePlan, request_id: str, log: EventLog) -> None:
    repo = ResponseRepository(plan.ctx.db)
    project = plan.principal.project_id
    try:
        started = dump(response_object(plan, "in_progress"))
        if not await repo.update_status(project, plan.response_id, started, only_if=("queued",)):
            return  # cancelled before it started
        events = await start_generation(plan, request_id)
        async for event in run_events(plan, events):
            log.append(dump(event))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("background response %s failed", plan.response_id)
        message = exc.message if isinstance(exc, APIError) else "The server had an error."
        error = {"code": "server_error", "message": message}
        failed = dump(response_object(plan, "failed", error=error))
        if await repo.update_status(project, plan.response_id, failed, only_if=ACTIVE):
            _log_failure(log, failed)
    finally:
        log.finish()
        await settle(plan, 0, 0)  # no-op when the run already settled
        await _announce(plan)


async def _announce(plan: ResponsePlan) -> None:
    """The webhook event of how the background response ended (none while it still runs,
    e.g. at a shutdown that leaves it to recovery)."""
    project = plan.principal.project_id
    try:
        row = await ResponseRepository(plan.ctx.db).get(project, plan.response_id)
    except Exception:  # deleted meanwhile, or the database is away: nothing to announce
        logger.warning("no webhook event for %s: its status could not be read", plan.response_id)
        return
    if row.status in ("completed", "failed", "cancelled", "incomplete"):
        await emit_event(plan.ctx, project, f"response.{row.status}", plan.response_id)


async def cancel_response(ctx: AppContext, principal: Principal, response_id: str) -> Response:
    """Cancel a background response; idempotent, and a 400 for one that already ended."""
    repo = ResponseRepository(ctx.db)
    row = await repo.get(principal.project_id, response_id)
    if not row.background:
        raise InvalidRequestError(
            "Only responses created with background=true can be cancelled.", param="response_id"
        )
    if row.status in ACTIVE:
        body = {**row.body, "status": "cancelled"}
        if await repo.update_status(principal.project_id, response_id, body, only_if=ACTIVE):
            task = ctx.response_tasks.get(response_id)
            if task is not None:
                task.cancel()
            return Response.model_validate(body)
        row = await repo.get(principal.project_id, response_id)
    if row.status == "cancelled":
        return Response.model_validate(row.body)
    raise InvalidRequestError(
        f"Cannot cancel a response with status '{row.status}'.", param="response_id"
    )


def forget(ctx: AppContext, response_id: str) -> None:
    """Stop a response's task, if any (when it is deleted)."""
    task = ctx.response_tasks.get(response_id)
    if task is not None:
        task.cancel()


def now_ms() -> int:
    return int(time.time() * 1000)


async def _heartbeat(ctx: AppContext) -> None:
    """Renew this replica's leases and fail the responses of replicas that died."""
    repo = ResponseRepository(ctx.db)
    lease = ctx.settings.replicas.lease_seconds
    while True:
        await asyncio.sleep(lease / 3)
        try:
            await repo.renew(ctx.replica_id, now_ms() + int(lease * 1000))
            failed = await repo.fail_interrupted(now_ms())
            if failed:
                logger.warning("failed %d background responses whose replica stopped", failed)
        except Exception:  # the database away for a moment: try again next beat
            logger.exception("background response heartbeat failed")


@asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Start-up recovery of interrupted responses, the lease heartbeat, and the cancellation
    of running responses at shutdown."""
    repo = ResponseRepository(ctx.db)
    failed = await repo.fail_interrupted(now_ms())
    if failed:
        logger.warning("marked %d interrupted background responses failed", failed)
    heartbeat = asyncio.create_task(_heartbeat(ctx), name="response leases")
    try:
        yield
    finally:
        heartbeat.cancel()
        tasks = [heartbeat, *ctx.response_tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await repo.fail_interrupted(now_ms(), owner=ctx.replica_id)
        except Exception:  # the database gone first: the leases run out instead
            logger.exception("could not mark this replica's running responses failed")
