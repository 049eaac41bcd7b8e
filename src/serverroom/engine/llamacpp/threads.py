"""How many threads llama.cpp computes with, chosen while it runs.

On a machine that other processes also load, llama.cpp's worker threads wait for each other at
every operation's barrier, spinning, and a thread whose core was taken holds all the others:
with both cores of a 2-core box busy elsewhere, SmolLM2-135M generated 1.8 tok/s on 2 threads
and 40 on 1. The right count depends on the load, which changes, so ``ThreadTuner`` measures:
every ``TRIAL_EVERY`` seconds of decoding it runs a few steps on a neighbouring count (one
fewer or one more thread, in turn), compares their time per token with that of the steps just
before, and keeps the faster count: fewer threads when their median step is 10 % faster, more
only when every step of the trial is 25 % faster. When the machine is quiet the trials cost
~2 % (a few slower steps every few seconds); when it is not, the engine moves to the count
that still runs within a few seconds. Only decode-sized steps are compared (prompt chunks
cost per token unlike them). ``engine.threads`` set explicitly fixes the count.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

TRIAL_EVERY = 2.0  # seconds of decoding between trials
TRIAL_STEPS = 4  # steps a trial runs
MIN_GAIN = 0.10  # a trial of fewer threads is kept when it is this much faster per token
MORE_GAIN = 0.25  # more threads: every trial step this much faster (a lull in the other load
# makes more threads look good for a moment, and they are what collapses when it returns)
DECODE_STEP = 64  # steps with more tokens than this (prompt chunks) are not compared


class ThreadTuner:
    """Chooses the thread count between decode steps (called from the decode thread only)."""

    def __init__(
        self,
        most: int,
        apply: Callable[[int], None],
        *,
        adaptive: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.most = max(1, most)
        self.current = self.most
        self.apply = apply
        self.adaptive = adaptive and self.most > 1
        self.clock = clock
        self.recent: deque[float] = deque(maxlen=TRIAL_STEPS)  # seconds/token, current count
        self.trial: list[float] = []
        self.trying: int | None = None
        self.direction = -1  # the next trial's neighbour: fewer threads first
        self.since = 0.0  # decode seconds since the last trial
        self.changes = 0

    def started(self) -> float:
        return self.clock()

    def observe(self, started: float, tokens: int) -> None:
        """A step of ``tokens`` tokens decoded since ``started`` (``started()``)."""
        if not self.adaptive or tokens <= 0:
            return
        seconds = self.clock() - started
        if tokens > DECODE_STEP:
            return
        per_token = seconds / tokens
        if self.trying is not None:
            self.trial.append(per_token)
            if len(self.trial) >= TRIAL_STEPS:
                self._decide()
            return
        self.recent.append(per_token)
        self.since += seconds
        if self.since >= TRIAL_EVERY and len(self.recent) == TRIAL_STEPS:
            self._start_trial()

    def _start_trial(self) -> None:
        candidate = self.current + self.direction
        if not 1 <= candidate <= self.most:
            self.direction = -self.direction
            candidate = self.current + self.direction
        self.direction = -self.direction
        self.trying, self.trial, self.since = candidate, [], 0.0
        self.apply(candidate)

    def _decide(self) -> None:
        assert self.trying is not None
        before = sorted(self.recent)[len(self.recent) // 2]  # medians: one odd step is noise
        if self.trying < self.current:
            wins = sorted(self.trial)[len(self.trial) // 2] < before * (1 - MIN_GAIN)
        else:
            wins = max(self.trial) < before * (1 - MORE_GAIN)
        if wins:
            self.current = self.trying
            self.changes += 1
            self.recent.clear()
        else:
            self.apply(self.current)
        self.trying, self.trial = None, []
