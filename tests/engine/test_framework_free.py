"""The core imports no web framework: errors, engines and constraints load without FastAPI."""

from __future__ import annotations

import subprocess
import sys

CORE = (
    "serverroom.errors",
    "serverroom.engine.llamacpp.engine",
    "serverroom.engine.fake",
    "serverroom.engine.registry",
    "serverroom.engine.textgen",
    "serverroom.constraints",
)


def test_the_core_imports_neither_fastapi_nor_starlette() -> None:
    code = (
        f"import sys, {', '.join(CORE)}\n"
        "print(sorted(m for m in sys.modules if m.startswith(('fastapi', 'starlette'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
