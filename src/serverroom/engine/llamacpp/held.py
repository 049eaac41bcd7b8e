"""llama.cpp calls that keep the GIL: the short per-token ones of the decode thread.

``llama_cpp`` binds libllama through ``ctypes.CDLL``, which releases the GIL around every call.
For ``llama_decode`` (tens of milliseconds) that is what we want. For the microsecond calls the
decode thread makes once per sequence per step (sample, logits pointer), it is costly: each
release lets the event-loop thread take the GIL, and getting it back can take a whole switch
interval (5 ms). With 16 streams that could add tens of milliseconds to every step. These
bindings go through ``ctypes.PyDLL`` on the same library, which keeps the GIL held, and so
does ``write_byte``, the decode thread's wake-up call to the event loop (``waker``).
"""

from __future__ import annotations

import ctypes
from typing import Any

from llama_cpp import llama_cpp as _bindings

_lib = ctypes.PyDLL(_bindings._lib._name)

_sample = _lib.llama_sampler_sample
_sample.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
_sample.restype = ctypes.c_int32


def sampler_sample(chain: Any, ctx: Any, index: int) -> int:
    """``llama_sampler_sample`` without releasing the GIL."""
    return int(_sample(chain, ctx, index))


_logits_at = _lib.llama_get_logits_ith
_logits_at.argtypes = [ctypes.c_void_p, ctypes.c_int32]
_logits_at.restype = ctypes.c_void_p


def logits_address(ctx: Any, index: int) -> int:
    """``llama_get_logits_ith`` as a plain address (0 for an index without logits)."""
    return int(_logits_at(ctx, index) or 0)


_libc = ctypes.PyDLL(None)
_write = _libc.write
_write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
_write.restype = ctypes.c_ssize_t


def write_byte(fd: int) -> None:
    """One byte to ``fd`` (a non-blocking pipe) without releasing the GIL; a full pipe is
    ignored, since a byte already in it wakes the reader just the same."""
    _write(fd, b"\0", 1)
