"""The batch worker: one asyncio task per app that runs batches in the background.

It takes the oldest batch with work (``validating``, ``in_progress``, ``finalizing``,
``cancelling``), validates its input file, runs its pending lines a few at a time at a lower
engine priority than interactive requests, stores each line's result as soon as it finishes,
and writes the output and error files at the end. Workers of several replicas share a batch:
each runs only the lines it has claimed (see ``BatchRepository.claim``). State lives in the
database only, so a restarted server resumes where it stopped: finished lines are never run
again and never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from serverroom.api.batches.lines import expired_result, parse_input, run_line
from serverroom.api.batches.repository import BatchRepository, LineUsage, PendingLine
from serverroom.api.files.service import FileService
from serverroom.api.webhooks.service import emit_event
from serverroom.context import AppContext, Call
from serverroom.errors import APIError
from serverroom.principal import Principal
from serverroom.storage.tables.batches import BatchRow

TERMINAL = ("completed", "failed", "cancelled", "expired")

logger = logging.getLogger("serverroom.batches")
PURGE_EVERY = 300.0  # seconds between sweeps for expired files
FINALIZE_LEASES = 4  # a batch's files are written within this many lease lengths
RETRIES = 6  # a line refused with 429/503 (engine busy, rate limit) is retried this often
AUTO_OTHER = 4  # lines in flight for an upstream model under batch.concurrency = auto


class BatchWorker:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.repo = BatchRepository(ctx.db)
        self.files = FileService(ctx)
        self.settings = ctx.settings.batch
        self._wake = asyncio.Event()
        self._cancels: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_purge = 0.0

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.settings.concurrency == 0:  # this replica runs no batches
            return
        self._task = asyncio.create_task(self._loop(), name="batch-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            try:
                await self.repo.renew_claims(self.ctx.replica_id, None)  # others take them now
            except Exception:  # the database gone first: the claims run out instead
                logger.exception("could not give up this replica's batch line claims")

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, batch_id: str) -> None:
        self._cancels.setdefault(batch_id, asyncio.Event()).set()

    # -- loop ------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                batch_id = await self.repo.next_active()
                if batch_id is not None:
                    await self._process(batch_id)
                    continue
                await self._maybe_purge()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("batch worker iteration failed")
                await asyncio.sleep(self.settings.poll_seconds)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = time.monotonic()
            await self.files.purge_expired()

    async def _process(self, batch_id: str) -> None:
        row = await self.repo.get(batch_id)
        if row is None:
            return
        try:
            await self._step(row)
        finally:
            await self._announce(row)

    async def _announce(self, before: BatchRow) -> None:
        """The webhook event of a batch that this step ended."""
        try:
            after = await self.repo.get(before.id)
        except Exception:  # the database is away: the step's own error says more
            logger.warning("no webhook event for %s: its status could not be read", before.id)
            return
        if after is not None and after.status != before.status and after.status in TERMINAL:
            await emit_event(self.ctx, after.project_id, f"batch.{after.status}", after.id)

    async def _step(self, row: BatchRow) -> None:
        batch_id = row.id
        try:
            if row.status == "validating":
                await self._validate(row)
            elif row.status == "in_progress":
                await self._run(row)
            elif row.status in ("finalizing", "cancelling"):
                await self._finalize(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("batch %s failed", batch_id)
            message = exc.message if isinstance(exc, APIError) else "an internal error"
            error = {
                "code": "server_error",
                "message": f"The batch failed: {message}.",
                "param": None,
                "line": None,
            }
            await self.repo.update(
                batch_id, status="failed", failed_at=int(time.time()), errors=[error]
            )

    # -- stages ----------------------------------------------------------------------------
    async def _validate(self, row: BatchRow) -> None:
        now = int(time.time())
        try:
            data = await self.files.blobs.read_bytes(row.input_file_id)
        except FileNotFoundError:
            data = None
        if data is None:
            errors = [
                {
                    "code": "file_not_found",
                    "message": "The input file no longer exists.",
                    "param": "input_file_id",
                    "line": None,
                }
            ]
            lines: list[PendingLine] = []
            model = None
        else:
            lines, model, errors = await asyncio.to_thread(parse_input, data, row.endpoint)
        if errors:
            await self.repo.update(
                row.id, only_from=("validating",), status="failed", failed_at=now, errors=errors
            )
            return
        await self.repo.start(row.id, lines, model, now)

    def _concurrency(self, row: BatchRow) -> int:
        """Lines of ``row`` in flight at once: as set, or (``auto``) one per slot of the model's
        engine (its scheduler keeps a slot free for interactive requests and admits those
        first, so the batch fills only what they leave idle); ``AUTO_OTHER`` for a model whose
        engine is not local."""
        if self.settings.concurrency != "auto":
            return self.settings.concurrency
        try:
            engine = self.ctx.engines.engine(row.model) if row.model else None
        except Exception:  # not a local model (an upstream's, or gone from the catalog)
            engine = None
        return engine.load().slots if engine is not None else AUTO_OTHER

    async def _run(self, row: BatchRow) -> None:
        call = Call(
            self.ctx,
            Principal(project_id=row.project_id),
            batch=True,
            priority=self.settings.priority,
        )
        stop = self._cancels.setdefault(row.id, asyncio.Event())
        gate = asyncio.Semaphore(self._concurrency(row))
        tasks: set[asyncio.Task[None]] = set()

        async def one(line: PendingLine) -> None:
            try:
                for attempt in range(RETRIES + 1):
                    ok, result, usage = await run_line(call, row.endpoint, line)
                    if result["response"]["status_code"] not in (429, 503) or attempt == RETRIES:
                        break
                    await asyncio.sleep(min(30.0, 0.5 * 2**attempt))  # busy: back off, retry
                await self.repo.finish(row.id, line.line, ok, result, usage)
            finally:
                gate.release()

        async with self._watch(row.id, stop):
            while await _acquire(gate, stop):
                claimed = [] if time.time() >= row.expires_at else await self._claim(row.id)
                if not claimed:  # none left that another worker does not hold
                    gate.release()
                    break
                task = asyncio.create_task(one(claimed[0]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            try:
                await self._drain(tasks, stop)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        row = await self._reload(row.id)
        if row.status == "cancelling":
            await self._finalize(row)
        elif time.time() >= row.expires_at:
            for line in await self.repo.pending(row.id):
                await self.repo.finish(row.id, line.line, False, expired_result(line), LineUsage())
            await self._finish_run(row.id, final="expired")
        elif await self.repo.pending(row.id):
            # A line failed to record (e.g. a database error): run it again on the next pass.
            await asyncio.sleep(self.settings.poll_seconds)
        else:
            await self._finish_run(row.id)

    async def _finish_run(self, batch_id: str, final: str | None = None) -> None:
        """Move a batch whose lines are all done from ``in_progress`` on to its final status
        (the replica that makes the move writes the files; another one leaves it)."""
        moved = await self.repo.update(
            batch_id,
            only_from=("in_progress",),
            status="finalizing",
            finalizing_at=int(time.time()),
        )
        if moved:
            await self._finalize(await self._reload(batch_id), final=final)

    def _lease_ms(self) -> int:
        return int(self.ctx.settings.replicas.lease_seconds * 1000)

    async def _claim(self, batch_id: str) -> list[PendingLine]:
        now = int(time.time() * 1000)
        owner = self.ctx.replica_id
        return await self.repo.claim(batch_id, owner, 1, now=now, until=now + self._lease_ms())

    async def _drain(self, tasks: set[asyncio.Task[None]], stop: asyncio.Event) -> None:
        """Wait for the running lines; on cancel, stop them (they stay pending)."""
        while tasks:
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                return

    @contextlib.asynccontextmanager
    async def _watch(self, batch_id: str, stop: asyncio.Event) -> AsyncIterator[None]:
        """Poll the database for a cancel made elsewhere (another replica, a restart)."""

        async def poll() -> None:
            beat = min(self.settings.poll_seconds, self.ctx.settings.replicas.lease_seconds / 3)
            while not stop.is_set():
                until = int(time.time() * 1000) + self._lease_ms()
                await self.repo.renew_claims(self.ctx.replica_id, until)  # lines in flight
                current = await self.repo.get(batch_id)
                if (
                    current is None
                    or current.status == "cancelling"
                    or time.time() >= current.expires_at
                ):
                    stop.set()
                    return
                await asyncio.sleep(beat)

        task = asyncio.create_task(poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _reload(self, batch_id: str) -> BatchRow:
        row = await self.repo.get(batch_id)
        assert row is not None
        return row

    async def _finalize(self, row: BatchRow, final: str | None = None) -> None:
        """Write the output and error files and set the final status (one replica does: the
        one holding the batch's claim; another waits for the claim to run out)."""
        now_ms = int(time.time() * 1000)
        until = now_ms + FINALIZE_LEASES * self._lease_ms()
        if not await self.repo.claim_batch(row.id, self.ctx.replica_id, now=now_ms, until=until):
            await asyncio.sleep(self.settings.poll_seconds)
            return
        results = await self.repo.results(row.id)
        output_id = await self._store_results(row, results, "completed", "output")
        error_id = await self._store_results(row, results, "failed", "error")
        now = int(time.time())
        status = final or ("cancelled" if row.status == "cancelling" else "completed")
        stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[
            status
        ]
        await self.repo.update(
            row.id,
            only_from=("finalizing", "cancelling", "in_progress"),
            status=status,
            output_file_id=output_id,
            error_file_id=error_id,
            **{stamp: now},
        )
        self._cancels.pop(row.id, None)

    async def _store_results(
        self, row: BatchRow, results: list[tuple[str, dict[str, Any]]], status: str, kind: str
    ) -> str | None:
        """Store the results of the lines that ended with ``status`` as the batch's ``kind``
        file (``output`` or ``error``); its id, or None when there are none."""
        lines = [json.dumps(result) for ended, result in results if ended == status]
        if not lines:
            return None
        obj = await self.files.store_bytes(
            row.project_id,
            ("\n".join(lines) + "\n").encode(),
            f"{row.id}_{kind}.jsonl",
            "batch_output",
            row.output_expires_seconds,
        )
        return str(obj["id"])


async def _acquire(gate: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    """Take a slot of ``gate`` unless ``stop`` is set first."""
    if stop.is_set():
        return False
    taking = asyncio.create_task(gate.acquire())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({taking, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if taking.done() and not taking.cancelled():
        if stop.is_set():
            gate.release()
            return False
        return True
    taking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await taking
    if taking.done() and not taking.cancelled():
        gate.release()
    return False


@contextlib.asynccontextmanager
async def lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Start the worker with the app; stop it (lines in flight stay pending) at shutdown."""
    worker = BatchWorker(ctx)
    ctx.batch_worker = worker
    worker.start()
    try:
        yield
    finally:
        await worker.stop()
        ctx.batch_worker = None
