"""Where a new sequence goes: which free slot's KV cache serves its prompt best, which other
slot's cache to copy a longer shared prefix from, and which sequence still computing a prefix
it shares to wait for (the scheduler's prefix caching); and where a step's tokens go in the
batch (``fill_batch``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serverroom.engine.llamacpp.scheduler import ServedSequence

# Copying a prefix from another slot's KV cache moves that slot's whole KV buffer (~47 MB,
# ~6 ms for the default model, about what 2 prompt tokens cost to compute); it is done when
# it saves at least this many.
COPY_MIN = 4
# A new prompt whose prefix another sequence is computing right now (a burst of requests with
# the same new system prompt) waits for that prefill and then copies it, instead of computing
# the same tokens beside it, when that saves at least this many (``choose_leader``).
FOLLOW_MIN = 32


_cell_ids = itertools.count()


@dataclass
class Slot:
    """One sequence id and what it holds in the KV cache: ``tokens``, and an id per token's
    cell (``cells``): a prefix copied in a unified KV buffer keeps the donor's cell ids, since
    the slots then share those cells, so the distinct ids count the cells in use."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)  # what this sequence id holds in KV
    busy: ServedSequence | None = None
    last_used: float = 0.0
    cells: list[int] = field(default_factory=list)

    def extend(self, tokens: list[int]) -> None:
        """Tokens computed into this slot's own new cells."""
        self.tokens.extend(tokens)
        self.cells.extend(next(_cell_ids) for _ in tokens)

    def truncate(self, n: int) -> None:
        del self.tokens[n:]
        del self.cells[n:]

    def copy_from(self, donor: Slot, n: int, *, shared: bool) -> None:
        """The donor's first ``n`` tokens, in the donor's cells (``shared``) or in copies."""
        self.tokens = donor.tokens[:n]
        self.cells = donor.cells[:n] if shared else [next(_cell_ids) for _ in self.tokens]


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share (slice comparisons, a binary search)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n - 1  # a[:lo] == b[:lo], a[:hi + 1] != b[:hi + 1]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def reuse_value(cached: int, common: int) -> int:
    """What taking a slot is worth: the prompt tokens it saves computing (``common``, shared
    with the ``cached`` tokens it holds), minus the cached tokens it throws away (another
    conversation's context). A prefix that every slot shares, such as the chat template's
    system prompt, is then not worth evicting a conversation for."""
    return common - (cached - common)


def choose_slot(free: list[Slot], prompt: list[int], common: dict[int, int]) -> Slot:
    """The slot whose cache is worth most to ``prompt`` (``reuse_value``; ``common`` maps each
    slot's sequence id to the prompt tokens its cache shares). When none is worth anything:
    the prompt's own earlier slot if one holds the whole prompt (a repeated prompt whose reply
    outgrew it: only that reply is dropped), else the least recently used slot, an empty one
    first (plain LRU for unrelated prompts, so hot caches stay)."""
    slot = max(free, key=lambda s: (reuse_value(len(s.tokens), common[s.seq_id]), -s.last_used))
    if reuse_value(len(slot.tokens), common[slot.seq_id]) <= 0:
        own = [s for s in free if common[s.seq_id] >= len(prompt) - 1 > 0]
        slot = max(own, key=lambda s: s.last_used) if own else min(free, key=lambda s: s.last_used)
    return slot


def fewest_runs(free: list[Slot], busy: set[int]) -> list[Slot]:
    """The free slots that leave the busy sequence ids in the fewest runs of consecutive ids.

    With one KV stream per sequence, llama.cpp splits a batch into one micro-batch per run of
    consecutive sequence ids (``split_equal``, sequential), and each micro-batch costs about a
    whole pass over the weights: four streams in scattered slots took 39 ms a step, against
    22-26 ms in adjacent ones. So a new sequence goes next to the busy ones (filling a hole
    first); the prefix it would have found in its own slot is copied (``choose_donor``)."""
    if not busy:
        return free

    def added(slot: Slot) -> int:
        return 1 - ((slot.seq_id - 1) in busy) - ((slot.seq_id + 1) in busy)

    fewest = min(added(s) for s in free)
    return [s for s in free if added(s) == fewest]


def choose_donor(slots: list[Slot], slot: Slot, common: dict[int, int]) -> Slot | None:
    """Another slot, busy or free, whose cache shares at least ``COPY_MIN`` more leading
    prompt tokens than ``slot``'s does (the most such), to copy them from; None if none."""
    best = max((s for s in slots if s is not slot), key=lambda s: common[s.seq_id], default=None)
    if best is None or common[best.seq_id] < common[slot.seq_id] + COPY_MIN:
        return None
    return best


def choose_leader(
    active: list[ServedSequence], seq: ServedSequence, cached: int
) -> tuple[ServedSequence, int] | None:
    """A sequence still prefilling (and not itself waiting) whose prompt shares at least
    ``FOLLOW_MIN`` more leading tokens with ``seq``'s than any cache holds (``cached``), not yet
    all computed: the one sharing most, and how many tokens ``seq`` waits for. None if none."""
    leader, need = None, cached + FOLLOW_MIN
    for other in active:
        if other is seq or other.slot is None or other.leader is not None or not other.prefilling:
            continue
        shared = min(common_prefix(other.prompt, seq.prompt), len(seq.prompt) - 1)
        if shared >= need and shared > other.n_past:
            leader, need = other, shared
    return None if leader is None else (leader, need)


Plan = list[tuple["ServedSequence", list[int], bool]]  # (sequence, its tokens, wants logits)


def plan_batch(active: list[ServedSequence], batch_size: int) -> Plan:
    """A step's tokens: decoding sequences first (their sampled token, and the tokens a
    constraint forced after it), then prompt chunks in arrival order (not of a sequence that
    waits for its leader), at most ``batch_size`` in all."""
    budget = batch_size
    plan: Plan = []
    for seq in active:
        if seq.pending and budget > 0:
            tokens = seq.pending[:budget]
            plan.append((seq, tokens, len(tokens) == len(seq.pending)))
            budget -= len(tokens)
    prefilling = [s for s in active if s.prefilling and s.leader is None]
    for seq in sorted(prefilling, key=lambda s: s.arrival):
        if budget <= 0:
            break
        chunk = seq.prompt[seq.n_past : min(seq.n_past + budget, seq.text_end())]
        if chunk:  # none while an image is next
            plan.append((seq, chunk, seq.n_past + len(chunk) == len(seq.prompt)))
            budget -= len(chunk)
    # The batch in sequence-id order: with one KV stream per sequence, llama.cpp splits a
    # batch into one ubatch per run of consecutive ids (out of order: 2.2x slower); slots
    # are chosen to keep those runs few (``fewest_runs``).
    plan.sort(key=lambda entry: entry[0].slot.seq_id if entry[0].slot else 0)
    return plan


def fill_batch(batch: Any, plan: Plan) -> list[tuple[ServedSequence, int]]:
    """Where a step's tokens go in the ``llama_batch``: each plan entry's tokens at their
    positions in the sequence's slot; the batch index of each sequence's logits."""
    n = 0
    outputs: list[tuple[ServedSequence, int]] = []
    for seq, tokens, wants_logits in plan:
        assert seq.slot is not None
        for offset, token in enumerate(tokens):
            batch.token[n] = token
            batch.pos[n] = seq.n_past + offset
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq.slot.seq_id
            last = offset == len(tokens) - 1
            batch.logits[n] = 1 if (last and wants_logits) else 0
            if last and wants_logits:
                outputs.append((seq, n))
            n += 1
    batch.n_tokens = n
    return outputs
