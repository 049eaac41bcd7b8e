"""llama.cpp calls that keep the GIL: the short per-token ones of the decode thread.

``llama_cpp`` binds libllama through ``ctypes.CDLL``, which releases the GIL around every call.
For ``llama_decode`` (tens of milliseconds) that is what we want. For the microsecond calls the
decode thread makes once per sequence per step (sample, logits pointer), it is costly: each
release lets the event-loop thread take the GIL, and getting it back can take a whole switch
interval (5 ms). With 16 streams that could add tens of milliseconds to every step. These
bindings go through ``ctypes.PyDLL`` on the same library, which keeps the GIL held.
"""

from __future__ import annotations

import ctypes
from typing import Any

from llama_cpp import llama_cpp as _bindings

_lib = ctypes.PyDLL(_bindings._lib._name)

_sample = _lib.llama_sampler_sample
_sample.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
_sample.restype = ctypes.c_int32

_logits_ith = _lib.llama_get_logits_ith
_logits_ith.argtypes = [ctypes.c_void_p, ctypes.c_int32]
_logits_ith.restype = ctypes.POINTER(ctypes.c_float)


def sampler_sample(chain: Any, ctx: Any, index: int) -> int:
    """``llama_sampler_sample`` without releasing the GIL."""
    return int(_sample(chain, ctx, index))


def logits_ith(ctx: Any, index: int) -> Any:
    """``llama_get_logits_ith`` (a float pointer) without releasing the GIL."""
    return _logits_ith(ctx, index)
