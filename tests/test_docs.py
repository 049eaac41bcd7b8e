"""Docs that are generated from code stay in sync with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_table_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_docs.py"), "--check"])
    assert result.returncode == 0, "run: python scripts/config_docs.py"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "serverroom serve" in readme.split("```")[1]
    assert "python -m pytest" in readme.split("```")[1]
    assert "\npython -m pytest" in ci
