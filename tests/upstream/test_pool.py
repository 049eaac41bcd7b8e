"""The upstream pool and client: member choice, affinity, failover and error mapping, on an
in-memory transport (the live tests run the same code against real servers)."""

from __future__ import annotations

import json

import httpx
import pytest

from serverroom.catalog import UpstreamSpec
from serverroom.errors import RelayedError, UpstreamError, UpstreamTimeoutError
from serverroom.upstream import Pool, Upstream

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


def _upstream(handler: httpx.MockTransport) -> Upstream:
    return Upstream(_spec(max_failures=1), httpx.AsyncClient(transport=handler))


async def test_a_connect_error_fails_over_and_a_4xx_is_relayed() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "a":
            raise httpx.ConnectError("refused")
        if json.loads(request.content)["model"] == "bad":
            error = {"message": "no", "type": "invalid_request_error", "param": "x", "code": "c"}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(200, json={"ok": True})

    upstream = _upstream(httpx.MockTransport(handle))
    upstream.pool.members[1].inflight = upstream.pool.members[2].inflight = 1  # a goes first
    assert await upstream.post("/x", {"model": "m"}, affinity=None, request_id="r") == {"ok": True}
    assert seen[0] == "a" and not upstream.pool.members[0].healthy
    with pytest.raises(RelayedError) as caught:
        await upstream.post("/x", {"model": "bad"}, affinity=None, request_id="r")
    assert caught.value.status_code == 400
    assert caught.value.body()["error"] == {
        "message": "no",
        "type": "invalid_request_error",
        "param": "x",
        "code": "c",
    }


async def test_every_member_failing_is_a_502_and_a_silent_one_a_504() -> None:
    upstream = _upstream(httpx.MockTransport(lambda r: httpx.Response(500, text="boom")))
    with pytest.raises(UpstreamError, match="500"):
        await upstream.post("/x", {}, affinity=None, request_id="")
    assert not any(m.healthy for m in upstream.pool.members)

    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    calls = _upstream(httpx.MockTransport(silent))
    with pytest.raises(UpstreamTimeoutError):
        await calls.post("/x", {}, affinity=None, request_id="")


async def test_probes_bring_members_back() -> None:
    up = {"a": False}

    def handle(request: httpx.Request) -> httpx.Response:
        ok = up.get(request.url.host, True)
        return httpx.Response(200 if ok else 503, json={"data": []})

    upstream = _upstream(httpx.MockTransport(handle))
    await upstream.probe()
    assert [m.healthy for m in upstream.pool.members] == [False, True, True]
    up["a"] = True
    await upstream.probe()
    assert all(m.healthy for m in upstream.pool.members)
