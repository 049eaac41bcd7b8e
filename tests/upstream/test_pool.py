"""The upstream pool and client: member choice, affinity, failover and error mapping, against
a stub HTTP server (the live tests run the same code against real model servers)."""

from __future__ import annotations

import json

import httpx
import pytest

from serverroom.catalog import UpstreamSpec
from serverroom.errors import RelayedError, UpstreamError, UpstreamTimeoutError
from serverroom.upstream import Connections, Pool, Upstream
from tests.upstream.stub import StubServer, dead_url, stub_server

URLS = ("http://a/v1", "http://b/v1", "http://c/v1")


def _spec(**kw: object) -> UpstreamSpec:
    return UpstreamSpec(base_urls=URLS, model="m", **kw)  # type: ignore[arg-type]


def test_least_loaded_first_and_unhealthy_last() -> None:
    pool = Pool(_spec())
    a, b, c = pool.members
    a.inflight, b.inflight, c.inflight = 3, 1, 2
    c.healthy = False
    assert [m.url for m in pool.candidates()] == [b.url, a.url, c.url]


def test_affinity_is_stable_until_its_member_is_much_busier() -> None:
    pool = Pool(_spec())
    chosen = {pool.candidates("conversation-1")[0].url for _ in range(10)}
    assert len(chosen) == 1
    member = next(m for m in pool.members if m.url in chosen)
    member.inflight = 5  # 5 more than the idle others: beyond the slack
    assert pool.candidates("conversation-1")[0] is not member
    member.inflight = 0
    keys = {pool.candidates(f"k{i}")[0].url for i in range(30)}
    assert len(keys) == 3  # different keys spread over the members


def test_failures_take_a_member_out() -> None:
    pool = Pool(_spec(max_failures=2))
    a = pool.members[0]
    pool.failed(a, "x")
    assert a.healthy
    pool.failed(a, "x")
    assert not a.healthy
    pool.succeeded(a)
    assert a.healthy and a.failures == 0


def _upstream(server: StubServer, *hosts: str, **kw: object) -> Upstream:
    urls = tuple(server.base_url(h) if h != "dead" else dead_url() for h in hosts)
    spec = UpstreamSpec(base_urls=urls, model="m", max_failures=1, **kw)  # type: ignore[arg-type]
    return Upstream(spec, Connections())


async def test_a_connect_error_fails_over_and_a_4xx_is_relayed() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        assert request.headers["x-request-id"] == "r"
        if json.loads(request.content)["model"] == "bad":
            error = {"message": "no", "type": "invalid_request_error", "param": "x", "code": "c"}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(200, json={"ok": True})

    with stub_server(handle) as server:
        upstream = _upstream(server, "dead", "b", "c")
        upstream.pool.members[1].inflight = upstream.pool.members[2].inflight = 1  # dead first
        try:
            answer = await upstream.post("/x", {"model": "m"}, affinity=None, request_id="r")
            assert answer == {"ok": True}
            dead = upstream.pool.members[0]
            assert not dead.healthy and "Connect" in (dead.last_error or "")
            assert len(seen) == 1  # the refused member did not count as an answer
            with pytest.raises(RelayedError) as caught:
                await upstream.post("/x", {"model": "bad"}, affinity=None, request_id="r")
        finally:
            await upstream.connections.close()
    assert caught.value.status_code == 400
    assert caught.value.body()["error"] == {
        "message": "no",
        "type": "invalid_request_error",
        "param": "x",
        "code": "c",
    }
    assert len(seen) == 2  # a 4xx is the upstream's verdict: not tried again elsewhere


async def test_every_member_failing_is_a_502_and_a_silent_one_a_504() -> None:
    seen: list[str] = []

    def boom(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(500, text="boom")

    with stub_server(boom) as server:
        upstream = _upstream(server, "a", "b", "c")
        try:
            with pytest.raises(UpstreamError, match="500"):
                await upstream.post("/x", {}, affinity=None, request_id="")
        finally:
            await upstream.connections.close()
    assert sorted(seen) == ["a", "b", "c"]  # a 5xx before any answer is tried on the next
    assert not any(m.healthy for m in upstream.pool.members)

    calls: list[str] = []

    def silent(request: httpx.Request) -> None:
        calls.append(request.url.host)

    with stub_server(silent) as server:
        upstream = _upstream(server, "a", "b", read_timeout=0.3)
        try:
            with pytest.raises(UpstreamTimeoutError):
                await upstream.post("/x", {}, affinity=None, request_id="")
        finally:
            await upstream.connections.close()
    assert len(calls) == 1  # connected but silent: it may be working, so never run twice


async def test_probes_bring_members_back() -> None:
    up = {"a": False}

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        ok = up.get(request.url.host, True)
        return httpx.Response(200 if ok else 503, json={"data": []})

    with stub_server(handle) as server:
        upstream = _upstream(server, "a", "b", "c")
        try:
            await upstream.probe()
            assert [m.healthy for m in upstream.pool.members] == [False, True, True]
            up["a"] = True
            await upstream.probe()
            assert all(m.healthy for m in upstream.pool.members)
        finally:
            await upstream.connections.close()


async def test_a_long_event_line_and_split_reads_are_whole_chunks() -> None:
    big = "x" * 300_000  # longer than one read, and than aiohttp's line limit
    events = [{"choices": [{"index": 0, "delta": {"content": big}}]}, {"choices": []}]
    body = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events) + "data: [DONE]\n\n"

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with stub_server(handle) as server:
        upstream = _upstream(server, "a")
        try:
            stream = await upstream.stream("/chat/completions", {}, affinity=None, request_id="")
            chunks = [chunk async for chunk in stream.chunks()]
        finally:
            await upstream.connections.close()
    assert chunks == events
    assert upstream.pool.members[0].inflight == 0
