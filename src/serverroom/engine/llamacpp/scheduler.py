"""Continuous batching over ``llama_decode``.

One thread owns the llama.cpp context. Every step it builds a single ``llama_batch`` holding one
token for each sequence that is decoding and chunks of prompt for sequences still being
prefilled (so a long prompt never stalls other streams), decodes it, and samples every sequence
that produced logits with that sequence's own sampler. New requests join at the next step,
finished or cancelled ones leave at once. Each slot remembers the tokens in its KV cache, and a
new request takes the free slot whose cache saves it the most work without evicting another
conversation for a merely shared prefix (``reuse_value``), so only the rest is computed (prefix
caching); a request whose prefix another one is computing right now waits for it and copies it
(``choose_leader``), so a burst with one new system prompt computes it once. An image in a
prompt (``media``) is a span of placeholders whose embeddings are decoded on their own, one
image per step, when the prefill reaches them; prompt chunks stop at a span, and a cached
prefix never ends inside one. A step's tokens reach the requests' asyncio
queues in one wake-up per event loop (``waker``); llama.cpp releases the GIL while it decodes,
and the short per-token calls and the wake-up keep it (``held``), so the event loop runs while
the model computes and does not interrupt the Python part of a step.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp as L

from serverroom.engine.base import (
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptProcessed,
    SampledToken,
)
from serverroom.engine.llamacpp.media import FILLER, ImageSpan, Projector
from serverroom.engine.llamacpp.placement import (
    Plan,
    Slot,
    choose_donor,
    choose_leader,
    choose_slot,
    common_prefix,
    fewest_runs,
    fill_batch,
    plan_batch,
)
from serverroom.engine.llamacpp.sampling import SequenceSampler, sample_step
from serverroom.engine.llamacpp.threads import ThreadTuner
from serverroom.engine.llamacpp.waker import Outbox

logger = logging.getLogger("serverroom.engine.llamacpp")
_arrivals = itertools.count()


@dataclass
class ServedSequence:
    """One request being served, as the scheduler thread sees it."""

    request: GenerationRequest
    emit: Callable[[GenerationEvent], None]
    max_context: int
    arrival: int = field(default_factory=lambda: next(_arrivals))
    slot: Slot | None = None
    n_past: int = 0
    cached: int = 0
    generated: int = 0
    pending: list[int] = field(default_factory=list)  # output tokens not yet in the KV cache
    sampler: SequenceSampler | None = None
    cancelled: bool = False
    images: dict[int, ImageSpan] = field(default_factory=dict)  # by prompt position
    # The sequence computing this one's prefix, and how much of it to wait for (``_join``).
    leader: ServedSequence | None = None
    lead_need: int = 0

    def text_end(self) -> int:
        """Where the prompt's text from ``n_past`` on ends: the next image span, or the end."""
        return min((at for at in self.images if at >= self.n_past), default=len(self.prompt))

    @property
    def prompt(self) -> list[int]:
        return self.request.prompt

    @property
    def prefilling(self) -> bool:
        return self.n_past < len(self.prompt)


class Scheduler:
    """The decode loop thread and the slots it serves.

    ``cond`` guards only what the event loop shares with the decode thread: the ``waiting``
    queue, the ``active`` list (the loop only counts it), every sequence's ``cancelled`` flag
    and ``stopping``; it is held just long enough to read or change them. The slots, the KV
    cache, the samplers and each sequence's progress belong to the decode thread alone, so a
    step decodes and samples (constraint masks included) without the lock, and ``submit`` and
    ``cancel`` never wait for one.
    """

    def __init__(
        self,
        ctx: int,
        n_vocab: int,
        eog: frozenset[int],
        *,
        slots: int,
        batch_size: int,
        projector: Projector | None = None,
        fast_forward: bool = True,
        tuner: ThreadTuner | None = None,
        shared_cells: bool = False,
    ) -> None:
        self.ctx = ctx
        self.shared_cells = shared_cells  # one unified KV buffer: a copied prefix is shared
        self.fast_forward = fast_forward
        self.tuner = tuner
        self.projector = projector
        self.mem = L.llama_get_memory(ctx)
        self.n_vocab = n_vocab
        self.eog = eog
        self.batch_size = batch_size
        self.slots = [Slot(i) for i in range(slots)]
        self.batch = L.llama_batch_init(batch_size, 0, 1)
        self.waiting: list[ServedSequence] = []
        self.active: list[ServedSequence] = []
        self.copying: set[int] = set()  # slots whose KV copy the next decode makes
        self.cond = threading.Condition()
        self.outbox = Outbox()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="llama-decode", daemon=True)

    # ----- called from the event loop thread -----
    def start(self) -> None:
        self.thread.start()

    def submit(self, seq: ServedSequence) -> None:
        with self.cond:
            self.waiting.append(seq)
            self.cond.notify()

    def cancel(self, seq: ServedSequence) -> None:
        with self.cond:
            seq.cancelled = True
            self.cond.notify()

    def load(self) -> tuple[int, int]:
        """Sequences (running, queued), read together: one moving between the two counts once."""
        with self.cond:
            return len(self.active), len(self.waiting)

    def kv_tokens(self) -> int:
        """KV cells in use: the tokens the slots hold, a cell that slots share counted once
        (read without the lock: a gauge's value)."""
        if self.shared_cells:
            return len({cell for slot in self.slots for cell in list(slot.cells)})
        return sum(len(slot.tokens) for slot in self.slots)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.thread.join(timeout=30)
        self.outbox.close()
        L.llama_batch_free(self.batch)

    # ----- the decode thread -----
    def _run(self) -> None:
        try:
            while self._between_steps():
                self._step()
                self.outbox.flush()
        except Exception:  # pragma: no cover - a crash here must not hang clients
            logger.exception("decode loop crashed")
        finally:
            self._drain()

    def _between_steps(self) -> bool:
        """Release cancelled sequences and admit waiting ones, sleeping while there is
        nothing to decode; False once the scheduler stops."""
        while True:
            with self.cond:
                while not (self.stopping or self.active or self.waiting):
                    self.cond.wait(timeout=0.5)
                if self.stopping:
                    return False
                cancelled = self._take_cancelled()
            for seq in cancelled:
                self._release(seq, "cancelled")
            self._admit()
            self.outbox.flush()
            if self.active:
                return True

    def _drain(self) -> None:
        """Finish every sequence still here when the loop ends (stopped, or crashed)."""
        with self.cond:
            left, self.active, self.waiting = self.active + self.waiting, [], []
            reason = "cancelled" if self.stopping else "error"
        for seq in left:
            self._release(seq, reason, "the engine stopped")
        self.outbox.flush()

    def _take_cancelled(self) -> list[ServedSequence]:
        """Drop cancelled sequences from the queue; take them out of ``active`` and return
        them, to be released (``cond`` held)."""
        self.waiting = [s for s in self.waiting if not s.cancelled]
        cancelled = [s for s in self.active if s.cancelled]
        if cancelled:
            self.active = [s for s in self.active if not s.cancelled]
        return cancelled

    def _admit(self) -> None:
        """Give waiting sequences the free slots: moved to ``active`` under the lock (so the
        loop's counts never miss one), their slots and samplers set up outside it."""
        with self.cond:
            arrivals = self._take_arrivals()
        for seq in arrivals:
            self._place(seq)

    def _take_arrivals(self) -> list[ServedSequence]:
        """The waiting sequences that get a slot now, in priority order, moved to ``active``
        (``cond`` held)."""
        self.waiting.sort(key=lambda s: (s.request.priority, s.arrival))
        free = sum(slot.busy is None for slot in self.slots)
        taken: list[ServedSequence] = []
        while self.waiting and free:
            if self.waiting[0].request.priority > 0 and free == 1 < len(self.slots):
                break  # background work never takes the last free slot
            taken.append(self.waiting.pop(0))
            free -= 1
        self.active.extend(taken)
        return taken

    def _place(self, seq: ServedSequence) -> None:
        """Put an admitted sequence in the free slot whose cache serves it best; if another
        sequence is computing a longer prefix it shares, it waits for that (``_join``)."""
        free = [slot for slot in self.slots if slot.busy is None]
        busy = {s.seq_id for s in self.slots if s.busy is not None}
        common = self._common(seq)
        slot = choose_slot(fewest_runs(free, busy), seq.prompt, common)
        slot.busy = seq
        seq.slot = slot
        seq.sampler = SequenceSampler(seq.request.params, self.n_vocab)
        follow = choose_leader(self.active, seq, max(common.values()))
        if follow is not None:
            seq.leader, seq.lead_need = follow
            return
        self._take_cache(seq, common)

    def _common(self, seq: ServedSequence) -> dict[int, int]:
        """Each slot's cached tokens shared with ``seq``'s prompt, by sequence id; none for a
        slot whose own copy is still queued (its data is not there yet to copy on)."""
        return {
            s.seq_id: 0 if s.seq_id in self.copying else common_prefix(s.tokens, seq.prompt)
            for s in self.slots
        }

    def _join(self) -> None:
        """Start the waiting sequences whose leader computed what they wait for (or ended):
        they take that prefix from its cache."""
        for seq in self.active:
            lead = seq.leader
            if lead is None or (lead.slot is not None and lead.n_past < seq.lead_need):
                continue
            seq.leader = None
            self._take_cache(seq, self._common(seq))

    def _take_cache(self, seq: ServedSequence, common: dict[int, int]) -> None:
        """Start a placed sequence from its slot's cached prefix, or from a longer one copied
        from another slot (``common``: each slot's tokens shared with the prompt)."""
        slot = seq.slot
        assert slot is not None
        donor = choose_donor(self.slots, slot, common)
        if donor is not None:  # its KV data moves at the next decode, before that computes
            L.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            L.llama_memory_seq_cp(self.mem, donor.seq_id, slot.seq_id, -1, -1)
            slot.copy_from(donor, common[donor.seq_id], shared=self.shared_cells)
            self.copying.add(slot.seq_id)
        reuse = min(common[(donor or slot).seq_id], len(seq.prompt) - 1)
        while reuse > 0 and seq.prompt[reuse] == FILLER:  # not into an image: back to its start
            reuse -= 1
        if not L.llama_memory_seq_rm(self.mem, slot.seq_id, reuse, -1):
            L.llama_memory_seq_rm(self.mem, slot.seq_id, -1, -1)
            reuse = 0
        slot.truncate(reuse)
        seq.n_past = seq.cached = reuse
        seq.emit(PromptProcessed(cached_tokens=reuse))

    def _plan_batch(self) -> Plan:
        return plan_batch(self.active, self.batch_size)

    def _decode_image(self) -> None:
        """Decode the first image that a prefilling sequence has reached (one per step, so
        the other streams keep their pace)."""
        for seq in self.active:
            span = seq.images.get(seq.n_past) if seq.prefilling and not seq.leader else None
            if span is None or seq.slot is None:
                continue
            assert self.projector is not None
            try:
                rc = self.projector.decode(
                    self.ctx, span, seq.n_past, seq.slot.seq_id, self.batch_size
                )
            except Exception:  # this sequence fails; the loop and the others go on
                logger.exception("decoding an image failed")
                rc = -1
            if rc != 0:
                logger.error("decoding an image of %d tokens returned %d", span.n_tokens, rc)
                self._finish(seq, "error", f"decoding an image failed ({rc}): KV cache full?")
            else:
                seq.slot.extend(span.placeholders())
                seq.n_past += span.n_tokens
            return

    def _step(self) -> None:
        self._join()
        if self.projector is not None:
            self._decode_image()
        plan = self._plan_batch()
        if not plan:  # every sequence here waits on an image (decoded next step)
            return
        outputs = fill_batch(self.batch, plan)
        started = self.tuner.started() if self.tuner is not None else 0.0
        rc = L.llama_decode(self.ctx, self.batch)
        self.copying.clear()  # the decode made the queued copies first
        if self.tuner is not None:
            self.tuner.observe(started, self.batch.n_tokens)
        if rc != 0:
            logger.error(
                "llama_decode returned %d for a batch of %d tokens", rc, self.batch.n_tokens
            )
            for seq, _, _ in plan:
                self._finish(seq, "error", f"llama_decode failed ({rc}): KV cache full?")
            return
        for seq, tokens, _ in plan:
            assert seq.slot is not None
            seq.slot.extend(tokens)
            seq.n_past += len(tokens)
            if seq.pending:
                del seq.pending[: len(tokens)]
        with self.cond:  # a sequence cancelled from here on is sampled once more, unread
            live = [(s, i) for s, i in outputs if not s.cancelled]
        samplers = []
        for seq, _ in live:
            assert seq.sampler is not None
            samplers.append(seq.sampler)
        drawn = sample_step(samplers, [i for _, i in live], self.ctx)
        for (seq, _), sampled in zip(live, drawn, strict=True):
            self._advance(seq, sampled)

    def _advance(self, seq: ServedSequence, sampled: SampledToken) -> None:
        if not self._emit(seq, sampled):
            return
        seq.pending = [sampled.token]
        constraint = seq.request.params.constraint
        if (
            constraint is None
            or not self.fast_forward
            or seq.request.params.top_logprobs is not None
        ):
            return
        for token in constraint.forced():  # appended without sampling, decoded with it
            constraint.accept(token)
            if seq.sampler is not None:
                seq.sampler.accepted(token)
            if not self._emit(seq, SampledToken(token, forced=True)):
                return
            seq.pending.append(token)

    def _emit(self, seq: ServedSequence, token: SampledToken) -> bool:
        """Send an output token; False when it ended the sequence (finished here)."""
        seq.generated += 1
        seq.emit(token)
        params = seq.request.params
        constraint = params.constraint
        ahead = seq.n_past + len(seq.pending) + 1
        if token.token in self.eog or (constraint is not None and constraint.is_finished()):
            self._finish(seq, "stop")
        elif seq.generated >= params.max_tokens or ahead >= seq.max_context:
            self._finish(seq, "length")
        else:
            return True
        return False

    def _finish(self, seq: ServedSequence, reason: str, error: str | None = None) -> None:
        """End an active sequence: out of ``active`` (under the lock), then released."""
        with self.cond:
            if seq in self.active:
                self.active.remove(seq)
        self._release(seq, reason, error)

    def _release(self, seq: ServedSequence, reason: str, error: str | None = None) -> None:
        """Free a sequence's slot and sampler and send its ``GenerationStats``."""
        if seq.slot is not None:
            seq.slot.busy = None
            seq.slot.last_used = time.monotonic()
            if reason == "error":
                L.llama_memory_seq_rm(self.mem, seq.slot.seq_id, -1, -1)
                seq.slot.truncate(0)
            seq.slot = None
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None
        seq.emit(
            GenerationStats(
                finish_reason=reason,  # type: ignore[arg-type]
                prompt_tokens=len(seq.prompt),
                cached_tokens=seq.cached,
                completion_tokens=seq.generated,
                error=error,
            )
        )
