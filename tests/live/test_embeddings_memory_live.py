"""A ~10 MB embeddings body costs a real server little memory: each shape is served or refused
with the platform's 400, the server's peak RSS (VmHWM, reset before each request) grows by
less than ``PEAK_MB``, and /health answers afterwards.

Measured growth (2-core dev machine, three runs): 2,000,000 two-letter strings +133 to +152 MB
(decoding the JSON alone makes ~13 times such a body in Python objects), 2,000,000 token ids
+75 to +93 MB, the other shapes +5 to +64 MB. Tokenizing a 10 MB text whole, or validating the
mixed array through pydantic's union, took 1.4 to 4.3 GB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live

PEAK_MB = 200
MODEL = "all-minilm-l6-v2"
SHAPES: dict[str, tuple[object, int, str | None]] = {
    # name: (input, status, error code)
    "one string of 2M words": ("word " * 2_000_000, 400, "context_length_exceeded"),
    "10M characters of punctuation": ("a." * 5_000_000, 400, "context_length_exceeded"),
    "2048 strings of 5 KB": (["word " * 1000] * 2048, 400, "context_length_exceeded"),
    "2048 token arrays of 800": ([[7592] * 800] * 2048, 400, "context_length_exceeded"),
    "2048 texts of 150 tokens": (["hello " * 150] * 2048, 400, "max_tokens_per_request"),
    "2M token ids": ([7592] * 2_000_000, 400, "context_length_exceeded"),
    "ids then strings": ([7592] * 1_500_000 + ["a"] * 500_000, 400, "context_length_exceeded"),
    "2M short strings": (["ab"] * 2_000_000, 400, "invalid_value"),
    "10M spaces around 2 words": ("hello" + " " * 10_000_000 + "world", 200, None),
}


def _peak_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("emb-memory"), args=["--engine.kind", "fake"])
    live.start()
    try:
        assert live.proc is not None
        if not Path(f"/proc/{live.proc.pid}/clear_refs").exists():
            pytest.skip("needs Linux /proc/<pid>/clear_refs to reset the peak RSS")
        _post(live, json.dumps({"model": MODEL, "input": ["warm up the model " * 10] * 64}))
        yield live
    finally:
        live.stop()


def _post(server: LiveServer, body: str) -> httpx.Response:
    return httpx.post(
        server.base_url + "/embeddings",
        content=body,
        headers={
            "authorization": f"Bearer {server.api_key}",
            "content-type": "application/json",
        },
        timeout=60,
    )


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_10_mb_body_is_answered_in_bounded_memory(server: LiveServer, name: str) -> None:
    value, status, code = SHAPES[name]
    request = {"model": MODEL, "input": value, "encoding_format": "base64"}
    body = json.dumps(request, separators=(",", ":"))
    assert 5_000_000 < len(body) < 11_000_000 or code == "max_tokens_per_request"
    assert server.proc is not None
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _peak_mb(pid)
    reply = _post(server, body)
    grown = _peak_mb(pid) - before
    print(f"{name}: {len(body) / 1e6:.1f} MB body, peak RSS +{grown} MB")
    assert reply.status_code == status, reply.text[:500]
    if code is not None:
        error = reply.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "input"
        assert error["code"] == code, error
    else:
        assert len(reply.json()["data"]) == 1
    assert grown < PEAK_MB, f"{name}: peak RSS grew by {grown} MB"
    assert httpx.get(server.root_url + "/health", timeout=5).status_code == 200
