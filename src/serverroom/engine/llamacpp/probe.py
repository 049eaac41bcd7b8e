"""The probe's child process: load a model with given native settings and run a batched decode.

Run by ``native.Probe.run`` as ``python -m serverroom.engine.llamacpp.probe '<json spec>'``. It
drives the real engine (model load, context, scheduler, sampler) with two concurrent requests
of different prompt lengths, so prompt processing over several sequences and batched
single-token decoding both run, as they will in the server. Exit status 0 means it worked; a
native fault kills this process instead of the server, and ``faulthandler`` prints where.

``SERVERROOM_PROBE_FAULT`` injects a real segmentation fault for tests of the fallback:
``extra_buffers`` faults only when extra buffer types are on, ``always`` in every probe, and
``hang`` makes the probe hang until it is killed.
"""

from __future__ import annotations

import asyncio
import ctypes
import faulthandler
import json
import os
import sys
import time
from pathlib import Path

from serverroom.engine.base import GenerationRequest, SampledToken, SamplingParams
from serverroom.engine.llamacpp.engine import LlamaCppEngine
from serverroom.engine.llamacpp.native import NativeChoice
from serverroom.settings import EngineSettings

FAULT_VARIABLE = "SERVERROOM_PROBE_FAULT"
_PROMPTS = (
    "The probe checks that this machine runs the model's kernels: " * 4,
    "Hello there",
)


def _inject_fault(extra_buffers: bool) -> None:
    fault = os.environ.get(FAULT_VARIABLE, "")
    if fault == "always" or (fault == "extra_buffers" and extra_buffers):
        ctypes.string_at(0)  # reads address 0: a real SIGSEGV, as a faulting kernel gives
    if fault == "hang":
        time.sleep(3600)


async def _exercise(engine: LlamaCppEngine, extra_buffers: bool) -> int:
    await engine.start()
    try:
        _inject_fault(extra_buffers)

        async def one(text: str) -> int:
            prompt = engine.tokenize(text)
            request = GenerationRequest(prompt, SamplingParams(max_tokens=4, temperature=0.0))
            return sum([isinstance(e, SampledToken) async for e in engine.generate(request)])

        counts = await asyncio.gather(*(one(text) for text in _PROMPTS))
        return sum(counts)
    finally:
        await engine.close()


def main(argv: list[str]) -> int:
    faulthandler.enable()
    spec = json.loads(argv[0])
    extra_buffers = bool(spec["extra_buffers"])
    settings = EngineSettings.model_validate(spec["settings"])
    # The queue bound shapes no computation: room for both requests even with one slot.
    settings = settings.model_copy(update={"max_queue": max(settings.max_queue, len(_PROMPTS))})
    engine = LlamaCppEngine(
        Path(spec["gguf"]),
        context_length=int(spec["context_length"]),
        settings=settings,
        native=NativeChoice(extra_buffers, "forced", "probe"),
    )
    tokens = asyncio.run(_exercise(engine, extra_buffers))
    if tokens == 0:
        print("the probe generated no tokens", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
