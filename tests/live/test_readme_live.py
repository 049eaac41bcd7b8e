"""The README's Python snippets run as written against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_snippets_run(live_env: LiveServer) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4
    script = "\n".join(blocks)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
