"""One big request does not freeze the server: while a huge request is refused (over the
item limit) or templated and tokenized (within it, off the event loop), /health answers fast."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time

import httpx
import pytest

from tests.live.server import LiveServer

pytestmark = pytest.mark.live


def _health_while(
    server: LiveServer, path: str, body: dict[str, object]
) -> tuple[int, list[float]]:
    """The big request's status, and /health's latencies (seconds) while it was in flight."""
    status: list[int] = []

    def send() -> None:
        reply = httpx.post(
            server.base_url + path,
            json=body,
            headers={"authorization": f"Bearer {server.api_key}"},
            timeout=300,
        )
        status.append(reply.status_code)

    latencies: list[float] = []
    with httpx.Client(base_url=server.root_url, timeout=10) as health:
        health.get("/health")  # connection up before the big request starts
        worker = threading.Thread(target=send)
        worker.start()
        while worker.is_alive():
            started = time.perf_counter()
            assert health.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
        worker.join()
    return status[0], latencies


@pytest.mark.parametrize(
    ("path", "key", "count", "expected"),
    [
        ("/chat/completions", "messages", 20_000, 400),  # over the item limit
        ("/responses", "input", 20_000, 400),
        ("/chat/completions", "messages", 4_000, 400),  # within it, too long for the context
        ("/responses", "input", 4_000, 400),
    ],
)
def test_health_stays_fast_during_a_huge_request(
    live_server: LiveServer, path: str, key: str, count: int, expected: int
) -> None:
    items = [{"role": "user", "content": f"message number {i} of many"} for i in range(count)]
    status, latencies = _health_while(live_server, path, {"model": "gpt-4.1", key: items})
    assert status == expected
    assert latencies, "the request finished before /health could be asked"
    assert statistics.median(latencies) < 0.1, latencies
    assert max(latencies) < 0.5, latencies  # a refused 20,000-message body: ~0.2 s to validate


def _read_reply(sock: socket.socket) -> str:
    """Read one HTTP reply to its end: the headers and body may come in separate packets."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _length(data: bytes) -> int:
    match = re.search(rb"content-length: *(\d+)", data, re.IGNORECASE)
    return int(match.group(1)) if match else 0


def test_a_body_that_trickles_in_is_a_408(tmp_path_factory: pytest.TempPathFactory) -> None:

    server = LiveServer(
        tmp_path_factory.mktemp("slow"),
        args=["--requests.body_timeout", "2", "--engine.slot_context", "2048"],
    )
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
            )
            started = time.monotonic()
            sock.sendall(head.encode())
            reply = _read_reply(sock)
            waited = time.monotonic() - started
        assert reply.startswith("HTTP/1.1 408"), reply
        assert "request_timeout" in reply and 1.5 < waited < 15
        assert httpx.get(f"{server.root_url}/health", timeout=5).status_code == 200
    finally:
        server.stop()
