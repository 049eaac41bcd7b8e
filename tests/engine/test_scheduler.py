"""The llama.cpp scheduler: slot admission (prefix reuse, priority, a slot kept free), batch
layout, event delivery, and a lock that never waits for a step."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from serverroom.engine.base import (
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptProcessed,
    SampledToken,
    SamplingParams,
)
from serverroom.engine.llamacpp import placement
from serverroom.engine.llamacpp import scheduler as sched
from serverroom.engine.llamacpp.placement import Slot
from serverroom.engine.llamacpp.scheduler import Scheduler, ServedSequence
from serverroom.engine.llamacpp.waker import Outbox


class _NoSampler:
    def __init__(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> Scheduler:
    removed: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        sched.L,
        "llama_memory_seq_rm",
        lambda mem, seq, p0, p1: removed.append((seq, p0, p1)) or True,
    )
    monkeypatch.setattr(sched, "SequenceSampler", _NoSampler)
    s = Scheduler.__new__(Scheduler)
    s.mem = None
    s.n_vocab = 10
    s.slots = [Slot(i) for i in range(3)]
    s.waiting, s.active, s.copying, s.shared_cells = [], [], set(), False
    s.cond = threading.Condition()
    s.removed = removed  # type: ignore[attr-defined]
    return s


def _seq(prompt: list[int], events: list[GenerationEvent], priority: int = 0) -> ServedSequence:
    request = GenerationRequest(
        prompt=prompt, params=SamplingParams(max_tokens=4), priority=priority
    )
    return ServedSequence(request, events.append, max_context=100)


def test_longest_prefix_slot_is_reused(scheduler: Scheduler) -> None:
    scheduler.slots[1].tokens = [1, 2, 3, 4, 5]
    scheduler.slots[2].tokens = [1, 2, 9]
    events: list[GenerationEvent] = []
    seq = _seq([1, 2, 3, 4, 7, 8], events)
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.slot is scheduler.slots[1]
    assert seq.n_past == seq.cached == 4
    assert scheduler.slots[1].tokens == [1, 2, 3, 4]
    assert events == [PromptProcessed(cached_tokens=4)]


def test_whole_prompt_cached_still_computes_last_token(scheduler: Scheduler) -> None:
    scheduler.slots[0].tokens = [1, 2, 3]
    events: list[GenerationEvent] = []
    seq = _seq([1, 2, 3], events)
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.cached == 2 and seq.prefilling


def test_priority_order_and_last_slot_kept_for_interactive(scheduler: Scheduler) -> None:
    events: list[GenerationEvent] = []
    batch = [_seq([5, i], events, priority=1) for i in range(3)]
    interactive = _seq([6], events)
    scheduler.waiting.extend(batch)
    scheduler._admit()
    assert [s.slot is not None for s in batch] == [True, True, False]  # one slot left free
    scheduler.waiting.append(interactive)
    scheduler._admit()
    assert interactive.slot is not None
    assert batch[2] in scheduler.waiting


def test_outbox_delivers_a_step_in_one_wakeup(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from serverroom.engine.llamacpp import held

    wakeups = 0
    original = held.write_byte

    def counting(fd: int) -> None:
        nonlocal wakeups
        wakeups += 1
        original(fd)

    monkeypatch.setattr(held, "write_byte", counting)

    async def run() -> tuple[list[GenerationEvent], list[GenerationEvent]]:
        loop = asyncio.get_running_loop()
        outbox = Outbox()
        first: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        second: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        send_first, send_second = outbox.sender(loop, first), outbox.sender(loop, second)

        def step() -> None:  # what the decode thread does in one step
            send_first(SampledToken(1))
            send_second(SampledToken(2))
            send_first(SampledToken(3))
            outbox.flush()

        worker = threading.Thread(target=step)
        worker.start()
        worker.join()
        got_first = [await first.get(), await first.get()]
        got_second = [await second.get()]
        outbox.close()
        await asyncio.sleep(0)  # the pipe is released on the loop's thread
        return got_first, got_second

    got_first, got_second = asyncio.run(run())
    assert [e.token for e in got_first] == [1, 3]  # type: ignore[union-attr]
    assert [e.token for e in got_second] == [2]  # type: ignore[union-attr]
    assert wakeups == 1


def test_waker_delivers_every_batch_in_order_from_another_thread() -> None:
    import asyncio

    from serverroom.engine.llamacpp.waker import LoopWaker

    async def run() -> list[int]:
        loop = asyncio.get_running_loop()
        got: list[int] = []
        done = asyncio.Event()

        def deliver(batch: list[tuple[Any, Any]]) -> None:
            got.extend(value for _, value in batch)
            if len(got) == 2000:
                done.set()

        waker = LoopWaker(loop, deliver)

        def producer() -> None:  # posts faster than the loop drains: wake-ups coalesce
            for i in range(0, 2000, 2):
                waker.post([(None, i), (None, i + 1)])

        thread = threading.Thread(target=producer)
        thread.start()
        await asyncio.wait_for(done.wait(), timeout=10)
        thread.join()
        waker.close()
        assert waker.closed
        return got

    assert asyncio.run(run()) == list(range(2000))


def test_batch_is_laid_out_in_sequence_id_order(scheduler: Scheduler) -> None:
    """Out-of-order sequence ids make llama.cpp split the batch (2x slower decode)."""
    scheduler.batch_size = 64
    events: list[GenerationEvent] = []
    seqs = [_seq([1, 2, 3], events) for _ in range(3)]
    for seq, slot_id in zip(seqs, (2, 0, 1), strict=True):
        seq.slot = scheduler.slots[slot_id]
        seq.n_past = 3
        seq.pending = [7]
    prefilling = _seq([4, 5, 6, 7], events)
    prefilling.slot = Slot(5)
    scheduler.slots.append(prefilling.slot)
    scheduler.active = [*seqs, prefilling]
    plan = scheduler._plan_batch()
    assert [entry[0].slot.seq_id for entry in plan] == [0, 1, 2, 5]  # type: ignore[union-attr]
    assert plan[-1][1] == [4, 5, 6, 7]


def test_a_shared_system_prompt_does_not_evict_a_conversation(scheduler: Scheduler) -> None:
    template = [1, 2, 3, 4]
    conversation = [*template, 50, 51, 52, 53, 54, 55]
    scheduler.slots[0].tokens = list(conversation)
    scheduler.slots[0].last_used = 5.0
    events: list[GenerationEvent] = []
    other = _seq([*template, 60, 61, 62], events)  # shares only the template
    scheduler.waiting.append(other)
    scheduler._admit()
    assert other.slot is not scheduler.slots[0]  # an empty slot, not the conversation's
    assert scheduler.slots[0].tokens == conversation
    follow_up = _seq([*conversation, 56, 57], events)  # the conversation's next turn
    scheduler.waiting.append(follow_up)
    scheduler._admit()
    assert follow_up.slot is scheduler.slots[0]
    assert follow_up.cached == len(conversation)


def test_unrelated_prompts_replace_the_least_recently_used_slot(scheduler: Scheduler) -> None:
    template = [1, 2, 3]
    for i, slot in enumerate(scheduler.slots):
        slot.tokens = [*template, 40 + i, 41 + i, 42 + i, 43 + i]
        slot.last_used = [3.0, 1.0, 2.0][i]
    events: list[GenerationEvent] = []
    seq = _seq([*template, 90, 91], events)  # matches only the template everywhere
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.slot is scheduler.slots[1]  # the least recently used
    assert seq.cached == 3


def test_a_repeated_prompt_takes_back_its_own_slot_rather_than_evict_another(
    scheduler: Scheduler,
) -> None:
    """No slot is worth reusing (the prompt's own earlier slot holds a reply longer than the
    prompt): the prompt still takes back that slot, dropping only the reply, rather than the
    least recently used one, whose cache would be lost whole."""
    template = [1, 2]
    prompt = [*template, 30, 31, 32]
    scheduler.slots[0].tokens = [*template, 40, 41, 42, 43, 44, 45, 46, 47]
    scheduler.slots[0].last_used = 1.0
    scheduler.slots[1].tokens = [*prompt, 70, 71, 72, 73, 74, 75]  # prompt + a long reply
    scheduler.slots[1].last_used = 2.0
    scheduler.slots[2].tokens = [*template, 50, 51, 52, 53, 54, 55, 56, 57]
    scheduler.slots[2].last_used = 3.0
    events: list[GenerationEvent] = []
    seq = _seq(prompt, events)
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.slot is scheduler.slots[1]
    assert seq.cached == len(prompt) - 1  # the last prompt token is recomputed for its logits


def test_common_prefix_counts_the_shared_leading_tokens() -> None:
    assert placement.common_prefix([1, 2, 3], [1, 2, 3]) == 3
    assert placement.common_prefix([1, 2, 3], [1, 2]) == 2
    assert placement.common_prefix([], [1]) == 0
    assert placement.common_prefix([5, 2], [1, 2]) == 0
    long = list(range(1000))
    for cut in (0, 1, 499, 998, 999):
        other = [*long[:cut], -1, *long[cut + 1 :]]
        assert placement.common_prefix(long, other) == cut


def test_a_long_shared_prefix_is_copied_from_another_slot(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt that lands in an empty slot while another slot (busy here) holds its first 20
    tokens gets them copied from that slot instead of computing them; a shorter overlap is
    not worth a copy."""
    copies: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(
        sched.L,
        "llama_memory_seq_cp",
        lambda mem, src, dst, p0, p1: copies.append((src, dst, p0, p1)),
    )
    system = list(range(100, 120))  # 20 tokens, at least COPY_MIN
    scheduler.slots[0].tokens = [*system, 7, 8, 9]
    scheduler.slots[0].busy = _seq([*system, 7, 8], [])
    events: list[GenerationEvent] = []
    seq = _seq([*system, 30, 31], events)
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.slot is not None and seq.slot is not scheduler.slots[0]
    assert copies == [(0, seq.slot.seq_id, -1, -1)]
    assert (seq.slot.seq_id, -1, -1) in scheduler.removed  # type: ignore[attr-defined]
    assert (seq.slot.seq_id, len(system), -1) in scheduler.removed  # type: ignore[attr-defined]
    assert seq.slot.tokens == system and seq.cached == len(system)
    assert events == [PromptProcessed(cached_tokens=len(system))]
    assert scheduler.slots[0].tokens == [*system, 7, 8, 9]  # the donor keeps its cache

    short = _seq([*system[: placement.COPY_MIN - 1], 60, 61], [])
    scheduler.waiting.append(short)
    scheduler._admit()
    assert len(copies) == 1 and short.cached == 0


def test_a_new_sequence_goes_next_to_the_busy_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp decodes each run of consecutive busy sequence ids as its own micro-batch, so a
    new request takes a free slot next to the busy ones (a hole first) even when its own
    earlier slot lies elsewhere; its prefix is then copied from that slot."""
    removed: list[tuple[int, int, int]] = []
    copies: list[tuple[int, int]] = []
    monkeypatch.setattr(
        sched.L, "llama_memory_seq_rm", lambda m, s, a, b: removed.append((s, a, b)) or True
    )
    monkeypatch.setattr(
        sched.L, "llama_memory_seq_cp", lambda m, a, b, p0, p1: copies.append((a, b))
    )
    monkeypatch.setattr(sched, "SequenceSampler", _NoSampler)
    s = Scheduler.__new__(Scheduler)
    s.mem, s.n_vocab = None, 10
    s.slots = [Slot(i) for i in range(8)]
    s.waiting, s.active, s.copying, s.shared_cells = [], [], set(), False
    s.cond = threading.Condition()
    prompt = list(range(100, 140))
    s.slots[6].tokens = [*prompt, 1, 2, 3]  # this prompt's own earlier slot
    for i in (2, 4):
        s.slots[i].busy = _seq([9], [])
    seq = _seq(prompt, [])
    s.waiting.append(seq)
    s._admit()
    assert seq.slot is s.slots[3]  # fills the hole between 2 and 4: one run 2-4
    assert copies == [(6, 3)] and seq.cached == len(prompt) - 1
    other = _seq([7, 7, 7], [])
    s.waiting.append(other)
    s._admit()
    assert other.slot in (s.slots[1], s.slots[5])  # extends the run rather than start one


def test_fewest_runs_without_busy_slots_keeps_every_choice() -> None:
    free = [Slot(i) for i in range(4)]
    assert placement.fewest_runs(free, set()) == free
    assert [s.seq_id for s in placement.fewest_runs(free[2:], {0})] == [2, 3]  # no neighbour: all
    holes = [Slot(0), Slot(2), Slot(4), Slot(6)]
    assert [s.seq_id for s in placement.fewest_runs(holes, {1, 3})] == [2]  # joins two runs
    assert [s.seq_id for s in placement.fewest_runs(holes[::3], {1, 3})] == [0]  # 6 would add one


def test_submit_and_cancel_do_not_wait_for_a_step_that_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The decode thread samples (constraint masks included) without the scheduler's lock, so
    the event loop's ``submit``, ``cancel`` and ``load`` return at once while a step samples;
    the cancelled sequence still ends as cancelled, the new one runs."""
    sampling, release = threading.Event(), threading.Event()

    def slow_sample_step(samplers: list[Any], indexes: list[int], ctx: int) -> list[SampledToken]:
        sampling.set()
        release.wait(timeout=5)
        return [SampledToken(1) for _ in samplers]

    monkeypatch.setattr(sched.L, "llama_get_memory", lambda ctx: None)
    monkeypatch.setattr(sched.L, "llama_decode", lambda ctx, batch: 0)
    monkeypatch.setattr(sched.L, "llama_memory_seq_rm", lambda mem, seq, p0, p1: True)
    monkeypatch.setattr(sched, "SequenceSampler", _NoSampler)
    monkeypatch.setattr(sched, "sample_step", slow_sample_step)
    scheduler = Scheduler(0, 10, frozenset({9}), slots=2, batch_size=16)
    scheduler.start()
    first_events: list[GenerationEvent] = []
    second_events: list[GenerationEvent] = []
    first, second = _seq([1, 2, 3], first_events), _seq([4, 5], second_events)
    try:
        scheduler.submit(first)
        assert sampling.wait(timeout=5)
        started = time.monotonic()
        scheduler.submit(second)
        scheduler.cancel(first)
        assert scheduler.load() == (1, 1)  # first still running (cancel is a flag), second queued
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while not all(
        events and isinstance(events[-1], GenerationStats)
        for events in (first_events, second_events)
    ):
        assert time.monotonic() < deadline, (first_events, second_events)
        time.sleep(0.01)
    scheduler.stop()
    assert isinstance(first_events[-1], GenerationStats)
    assert first_events[-1].finish_reason == "cancelled"
    assert second_events[-1] == GenerationStats("length", 2, 0, 4)


class _Forcing:
    """A constraint that forces ``runs[i]`` after the i-th sampled token and is finished once
    ``done_at`` tokens were accepted."""

    def __init__(self, runs: list[list[int]], done_at: int = 1000) -> None:
        self.runs = runs
        self.accepted: list[int] = []
        self.done_at = done_at

    def allowed_mask(self) -> None:
        return None

    def accept(self, token: int) -> None:
        self.accepted.append(token)

    def is_finished(self) -> bool:
        return len(self.accepted) >= self.done_at

    def decide(self, logits: Any) -> None:
        return None

    def forced(self) -> list[int]:
        return self.runs.pop(0) if self.runs else []


def _forcing_seq(
    scheduler: Scheduler, constraint: _Forcing, events: list[GenerationEvent], max_tokens: int = 20
) -> ServedSequence:
    scheduler.eog = frozenset({0})
    scheduler.fast_forward = True
    scheduler.batch_size = 64
    params = SamplingParams(max_tokens=max_tokens, constraint=constraint)
    seq = ServedSequence(GenerationRequest(prompt=[1, 2], params=params), events.append, 100)
    seq.slot, seq.n_past = scheduler.slots[0], 2
    scheduler.active = [seq]
    return seq


def test_forced_tokens_follow_the_sampled_one_into_the_next_step(scheduler: Scheduler) -> None:
    events: list[GenerationEvent] = []
    constraint = _Forcing([[5, 6, 7]])
    seq = _forcing_seq(scheduler, constraint, events)
    constraint.accept(4)  # the sampler accepts the sampled token before the scheduler sees it
    scheduler._advance(seq, SampledToken(4))
    assert events == [SampledToken(4), *(SampledToken(t, forced=True) for t in (5, 6, 7))]
    assert constraint.accepted == [4, 5, 6, 7] and seq.generated == 4
    plan = scheduler._plan_batch()
    assert plan == [(seq, [4, 5, 6, 7], True)]  # one step, logits after the last


def test_forced_tokens_stop_at_the_limit_and_at_the_grammars_end(scheduler: Scheduler) -> None:
    events: list[GenerationEvent] = []
    seq = _forcing_seq(scheduler, _Forcing([[5, 6, 7]]), events, max_tokens=3)
    scheduler._advance(seq, SampledToken(4))
    assert [e.token for e in events if isinstance(e, SampledToken)] == [4, 5, 6]
    assert isinstance(events[-1], GenerationStats) and events[-1].finish_reason == "length"
    events.clear()
    ending = _Forcing([[5, 6, 7]], done_at=2)
    seq = _forcing_seq(scheduler, ending, events)
    ending.accept(4)
    scheduler._advance(seq, SampledToken(4))
    assert [e.token for e in events if isinstance(e, SampledToken)] == [4, 5]
    assert isinstance(events[-1], GenerationStats) and events[-1].finish_reason == "stop"


def test_no_forced_tokens_when_off_or_with_logprobs(scheduler: Scheduler) -> None:
    events: list[GenerationEvent] = []
    seq = _forcing_seq(scheduler, _Forcing([[5, 6]]), events)
    scheduler.fast_forward = False
    scheduler._advance(seq, SampledToken(4))
    assert seq.pending == [4] and events == [SampledToken(4)]
    seq = _forcing_seq(scheduler, _Forcing([[5, 6]]), events)
    seq.request.params = SamplingParams(max_tokens=9, top_logprobs=0, constraint=_Forcing([[5]]))
    scheduler._advance(seq, SampledToken(4))
    assert seq.pending == [4]


def test_a_long_forced_run_is_split_over_steps(scheduler: Scheduler) -> None:
    events: list[GenerationEvent] = []
    seq = _forcing_seq(scheduler, _Forcing([list(range(10, 30))]), events, max_tokens=50)
    scheduler._advance(seq, SampledToken(4))
    scheduler.batch_size = 8
    first = scheduler._plan_batch()
    assert first == [(seq, [4, *range(10, 17)], False)]  # no logits until the run is in
    del seq.pending[:8]
    assert scheduler._plan_batch() == [(seq, list(range(17, 25)), False)]


def test_a_burst_with_one_new_prefix_computes_it_once(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests arriving together with the same new system prompt: the first computes it, the
    others wait (no prompt chunk of theirs is planned) and, once it is computed, copy it from
    the first's slot and compute only their own questions."""
    copies: list[tuple[int, int, int, int]] = []
    monkeypatch.setattr(
        sched.L, "llama_memory_seq_cp", lambda m, a, b, p0, p1: copies.append((a, b, p0, p1))
    )
    scheduler.batch_size = 16
    system = list(range(100, 100 + placement.FOLLOW_MIN + 8))
    events: list[list[GenerationEvent]] = [[], [], []]
    seqs = [_seq([*system, 60 + i, 61 + i], events[i]) for i in range(3)]
    scheduler.waiting.extend(seqs)
    scheduler._admit()
    lead, *rest = seqs
    assert lead.leader is None and [s.leader for s in rest] == [lead, lead]
    assert events[0] == [PromptProcessed(cached_tokens=0)] and events[1] == events[2] == []
    while lead.n_past < len(system):  # the leader's prefill, a batch at a time; others wait
        plan = scheduler._plan_batch()
        assert [entry[0] for entry in plan] == [lead]
        lead.n_past += len(plan[0][1])
        assert lead.slot is not None
        lead.slot.tokens.extend(plan[0][1])
        scheduler._join()
        if lead.n_past < len(system):
            assert copies == [] and all(s.leader is lead for s in rest)
    assert lead.n_past >= len(system)
    assert lead.slot is not None
    assert sorted(copies) == sorted((lead.slot.seq_id, s.slot.seq_id, -1, -1) for s in rest)  # type: ignore[union-attr]
    for seq, got in zip(rest, events[1:], strict=True):
        assert seq.leader is None and seq.cached == seq.n_past == len(system)
        assert got == [PromptProcessed(cached_tokens=len(system))]
    plan = scheduler._plan_batch()
    assert [entry[0] for entry in plan] == rest  # each computes its own question now
    assert [entry[1] for entry in plan] == [s.prompt[len(system) :] for s in rest]


def test_a_waiting_sequence_starts_alone_when_its_leader_goes(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sched.L, "llama_memory_seq_cp", lambda *args: None)
    scheduler.batch_size = 64
    system = list(range(100, 100 + placement.FOLLOW_MIN + 8))
    lead, follower = _seq([*system, 1], []), _seq([*system, 2], [])
    scheduler.waiting.extend([lead, follower])
    scheduler._admit()
    assert follower.leader is lead
    scheduler._finish(lead, "cancelled")  # before it computed anything
    scheduler._join()
    assert follower.leader is None and follower.cached == 0 and follower.prefilling
    assert [entry[0] for entry in scheduler._plan_batch()] == [follower]


def test_a_prefix_already_computed_is_copied_at_once_not_waited_for(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sched.L, "llama_memory_seq_cp", lambda *args: None)
    system = list(range(100, 100 + placement.FOLLOW_MIN + 8))
    lead = _seq([*system, 1, 2, 3], [])
    scheduler.waiting.append(lead)
    scheduler._admit()
    assert lead.slot is not None
    lead.n_past = len(system) + 1  # its prefill got past the shared part
    lead.slot.tokens = lead.prompt[: lead.n_past]
    late = _seq([*system, 9], [])
    scheduler.waiting.append(late)
    scheduler._admit()
    assert late.leader is None and late.cached == len(system)


@pytest.mark.parametrize("shared", [False, True], ids=["streams", "unified"])
def test_kv_cells_in_use_count_a_shared_prefix_once_in_a_unified_buffer(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch, shared: bool
) -> None:
    monkeypatch.setattr(sched.L, "llama_memory_seq_cp", lambda *args: None)
    scheduler.shared_cells = shared
    system = list(range(100, 140))
    scheduler.slots[0].extend([*system, 1, 2])  # a request still running computed it
    scheduler.slots[0].busy = _seq([*system, 1], [])
    seq = _seq([*system, 7, 8, 9], [])
    scheduler.waiting.append(seq)
    scheduler._admit()
    assert seq.slot is not None and seq.cached == len(system)
    seq.slot.extend([7, 8, 9])
    own = len(system) + 2 + len(system) + 3
    assert scheduler.kv_tokens() == (own - len(system) if shared else own)
