"""The README's Python snippets run as written against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
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


def test_a_seed_snippet_with_default_settings_answers_quickly(tmp_path: Path) -> None:
    """No output limit and the platform's temperature 1.0, on a server with every default:
    the model's default output limit keeps the reply to seconds, and the response says so."""
    import openai

    server = LiveServer(tmp_path)
    server.start()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        started = time.monotonic()
        response = client.responses.create(
            model="gpt-4.1", input="Explain what a token is in one sentence."
        )
        took = time.monotonic() - started
        assert response.output_text
        assert response.max_output_tokens == 512
        assert response.usage is not None and response.usage.output_tokens <= 512
        assert took < 90, f"{took:.1f} s for {response.usage.output_tokens} tokens"
        chat = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "Write a long story."}]
        )
        assert chat.usage is not None and chat.usage.completion_tokens <= 512
    finally:
        server.stop()
