"""What this machine and this llama.cpp build are: the facts a probe verdict and a bug report need.

Reading them runs no llama.cpp kernel: only the library's own description of its build.
"""

from __future__ import annotations

import functools
import platform
from importlib import metadata
from pathlib import Path

# CPU features that decide which llama.cpp kernels run (x86-64 and arm64 spellings).
_RELEVANT = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512vbmi",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "amx_fp16",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "sve",
    "sve2",
    "sme",
)


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_model() -> str:
    info = _cpuinfo()
    name = info.get("model name") or info.get("CPU part") or platform.processor()
    return f"{platform.machine()} {name}".strip()


def cpu_features() -> list[str]:
    """The CPU's features that matter to llama.cpp, in a fixed order."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [flag for flag in _RELEVANT if flag in flags]


def llama_version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "not installed"


def llama_system_info() -> str:
    """llama.cpp's own account of its build: the CPU backend's compiled features."""
    import llama_cpp

    info: bytes = llama_cpp.llama_print_system_info()
    return info.decode(errors="replace").strip()


def _library_identity() -> str:
    """Size and time of the llama.cpp libraries, so a rebuild of the same version differs."""
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    files = sorted(lib.glob("*.so*")) + sorted(lib.glob("*.dylib")) + sorted(lib.glob("*.dll"))
    return " ".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)


@functools.cache
def llama_build() -> str:
    return f"llama-cpp-python {llama_version()}; {llama_system_info()}; {_library_identity()}"
