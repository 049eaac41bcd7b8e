"""One big request does not freeze the server: while a huge request is refused (over the
item limit) or templated and tokenized (within it, off the event loop), /health answers fast."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator

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
    # The median is the loop's usual answer; the maximum allows a busy 2-core machine's
    # scheduling noise (before: 64 s for 20,000 messages, ~0.2 s for a full GC pass).
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 0.25, latencies


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


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that waits 2 s for a request's headers and 2 s for its body."""
    server = LiveServer(
        tmp_path_factory.mktemp("slow"),
        args=[
            *("--requests.body_timeout", "2", "--requests.header_timeout", "2"),
            *("--engine.slot_context", "2048"),
        ],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _closed(sock: socket.socket, within: float = 1.0) -> bool:
    """Whether the server closes the connection (after its reply, if any) within ``within``
    seconds: at once, not at uvicorn's keep-alive timeout (5 s)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_body_that_trickles_in_is_a_408(impatient_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=20) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model"'
        )
        started = time.monotonic()
        sock.sendall(head.encode())
        reply = _read_reply(sock)
        waited = time.monotonic() - started
        assert _closed(sock), "the rest of the body must not hold the connection"
    assert reply.startswith("HTTP/1.1 408"), reply
    assert "request_timeout" in reply and 1.5 < waited < 15
    assert httpx.get(f"{impatient_server.root_url}/health", timeout=5).status_code == 200


def test_headers_that_trickle_in_are_a_408(impatient_server: LiveServer) -> None:
    port = impatient_server.port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20) as silent,
        socket.create_connection(("127.0.0.1", port), timeout=20) as partial,
    ):
        started = time.monotonic()
        partial.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        # Meanwhile other connections are served.
        answer = httpx.post(
            f"{impatient_server.base_url}/chat/completions",
            json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}]}
            | {"max_tokens": 4},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert httpx.get(f"{impatient_server.root_url}/health", timeout=5).status_code == 200
        reply = _read_reply(partial)
        waited = time.monotonic() - started
        assert _closed(partial) and _closed(silent)  # one that sent nothing: closed, no reply
    assert reply.startswith("HTTP/1.1 408"), reply
    assert '"code":"request_timeout"' in reply and "connection: close" in reply
    assert 1.5 < waited < 15, waited
    assert httpx.get(f"{impatient_server.root_url}/health", timeout=5).status_code == 200


def test_a_slow_but_steady_keep_alive_client_is_served(impatient_server: LiveServer) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n"
    with socket.create_connection(("127.0.0.1", impatient_server.port), timeout=20) as sock:
        for pause in (0.0, 1.5, 3.0):  # idle between requests (uvicorn's keep-alive: 5 s)
            time.sleep(pause)
            sock.sendall(request[:20])
            time.sleep(1.2)  # the headers arrive in 1.2 s of the 2 s allowed
            sock.sendall(request[20:])
            assert _read_reply(sock).startswith("HTTP/1.1 200"), pause
