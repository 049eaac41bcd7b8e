"""Rate limits: 429 with the platform's message and headers, SDK retries, concurrency, give-back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from serverroom.accounts.limiter import Limiter, format_duration, wait_time
from serverroom.accounts.tiers import Ladder, ModelLimits
from serverroom.app import create_app
from serverroom.settings import AuthSettings, LimitsSettings
from tests.accounts.conftest import ADMIN_KEY, Admin, AppFactory, sdk_for, write_tiers
from tests.conftest import fake_settings

TIERS = """
[[tier]]
name = "free"
spend_usd = 0
rpm = {rpm}
tpm = {tpm}
"""


def _limited_app(make_app: AppFactory, tmp_path: Path, rpm: int, tpm: int, window: int):  # type: ignore[no-untyped-def]
    tiers = write_tiers(tmp_path / "tiers.toml", TIERS.format(rpm=rpm, tpm=tpm))
    return make_app(limits=LimitsSettings(tiers_file=tiers, window_seconds=window))  # type: ignore[call-arg]


def test_tight_tpm_gives_rate_limit_error_then_retry_succeeds(
    tmp_path: Path, make_app: AppFactory
) -> None:
    client = _limited_app(make_app, tmp_path, rpm=1000, tpm=100, window=1)
    admin = Admin(client)
    project = admin.project("tight")
    _, key = admin.key(project)
    messages = [{"role": "user", "content": "hello there"}]
    ok = sdk_for(client, key).chat.completions.with_raw_response.create(
        model="gpt-4.1-mini",
        messages=messages,
        max_tokens=40,  # type: ignore[arg-type]
    )
    assert ok.headers["x-ratelimit-limit-tokens"] == "100"
    assert ok.headers["x-ratelimit-limit-requests"] == "1000"
    assert int(ok.headers["x-ratelimit-remaining-tokens"]) < 100
    assert ok.headers["x-ratelimit-remaining-requests"] == "999"
    assert ok.headers["x-ratelimit-reset-tokens"].endswith("s")
    assert ok.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as info:
        sdk_for(client, key).chat.completions.create(
            model="gpt-4.1-mini",
            messages=messages,
            max_tokens=40,  # type: ignore[arg-type]
        )
    err = info.value
    assert err.code == "rate_limit_exceeded"
    assert err.type == "tokens"
    assert err.message.startswith("Error code: 429")
    assert (
        f"Rate limit reached for gpt-4.1-mini in project {project} on tokens per 1s (TPM)"
        in err.message
    )
    assert "Limit 100, Used " in err.message and "Requested 73" in err.message
    assert "Please try again in " in err.message
    retry_ms = float(err.response.headers["retry-after-ms"])
    assert 0 < retry_ms <= 2100
    assert 1 <= int(err.response.headers["retry-after"]) <= 3
    assert err.response.headers["x-ratelimit-limit-tokens"] == "100"
    assert int(err.response.headers["x-ratelimit-remaining-tokens"]) < 73
    # a 429 carries every x-ratelimit-* header, like any other reply
    assert err.response.headers["x-ratelimit-limit-requests"] == "1000"
    assert int(err.response.headers["x-ratelimit-remaining-requests"]) >= 998
    assert err.response.headers["x-ratelimit-reset-requests"].endswith("s")
    # the SDK honours retry-after(-ms) and gets through once the window has moved on
    reply = sdk_for(client, key, max_retries=4).chat.completions.create(
        model="gpt-4.1-mini",
        messages=messages,
        max_tokens=40,  # type: ignore[arg-type]
    )
    assert reply.choices


def test_request_larger_than_the_limit_is_not_retried(tmp_path: Path, make_app: AppFactory) -> None:
    client = _limited_app(make_app, tmp_path, rpm=1000, tpm=50, window=60)
    admin = Admin(client)
    _, key = admin.key(admin.project("small"))
    r = client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-4.1-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100,
        },
    )
    assert r.status_code == 429
    assert r.headers["x-should-retry"] == "false"
    assert "Request too large for gpt-4.1-mini" in r.json()["error"]["message"]
    assert "per min (TPM)" in r.json()["error"]["message"]


async def test_concurrent_requests_respect_rpm(tmp_path: Path) -> None:
    tiers = write_tiers(tmp_path / "tiers.toml", TIERS.format(rpm=10, tpm=10_000_000))
    settings = fake_settings(
        tmp_path,
        auth=AuthSettings(admin_key=ADMIN_KEY),  # type: ignore[arg-type]
        limits=LimitsSettings(tiers_file=tiers),  # type: ignore[call-arg]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            project = (
                await http.post("/v1/organization/projects", headers=admin, json={"name": "busy"})
            ).json()["id"]
            key = (
                await http.post(
                    f"/v1/organization/projects/{project}/api_keys", headers=admin, json={}
                )
            ).json()["value"]
            body = {
                "model": "gpt-4.1-mini",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 2,
            }
            replies = await asyncio.gather(
                *(
                    http.post(
                        "/v1/chat/completions",
                        json=body,
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    for _ in range(50)
                )
            )
    codes = [r.status_code for r in replies]
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 40
    limited = next(r for r in replies if r.status_code == 429)
    assert limited.json()["error"]["type"] == "requests"
    assert (
        "on requests per min (RPM): Limit 10, Used 10, Requested 1"
        in limited.json()["error"]["message"]
    )
    assert float(limited.headers["retry-after-ms"]) > 0
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.headers["x-ratelimit-limit-tokens"].isdigit()


async def _limiter_give_back(limiter: Limiter) -> None:
    project = "proj_" + uuid.uuid4().hex
    limits = ModelLimits(rpm=100, tpm=100)
    first = await limiter.acquire(project, "m", limits, 80)
    assert first.headers["x-ratelimit-remaining-tokens"] == "20"
    await limiter.settle(first, 10)  # only 10 were used: 70 come back
    second = await limiter.acquire(project, "m", limits, 80)
    assert second.headers["x-ratelimit-remaining-tokens"] == "10"
    with pytest.raises(Exception, match="tokens per min"):
        await limiter.acquire(project, "m", limits, 80)
    # the refused request did not keep its request hit
    third = await limiter.acquire(project, "m", limits, 5)
    assert third.headers["x-ratelimit-remaining-requests"] == "97"


async def test_give_back_in_memory() -> None:
    limiter = Limiter(window_seconds=60, redis_url=None, prefix="t")
    await _limiter_give_back(limiter)


@pytest.mark.redis
async def test_give_back_in_redis() -> None:
    limiter = Limiter(
        window_seconds=60, redis_url="redis://127.0.0.1:6379/5", prefix=f"test-{uuid.uuid4().hex}"
    )
    try:
        await _limiter_give_back(limiter)
    finally:
        await limiter.close()


def test_durations_and_waits() -> None:
    assert format_duration(0.02) == "20ms"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(360) == "6m0s"
    assert format_duration(3723) == "1h2m3s"
    # nothing used: no wait; full current window: wait for the roll, then for weight to decay
    assert wait_time((0, 0.0, 0, 120.0), 60, 10, 1) == 0.0
    assert wait_time((0, 0.0, 10, 90.0), 60, 10, 1) == pytest.approx(30 + 6)
    assert wait_time((10, 30.0, 0, 90.0), 60, 10, 5) == pytest.approx(0)
    assert wait_time((10, 30.0, 0, 90.0), 60, 10, 6) == pytest.approx(6)


def test_builtin_ladder_is_platform_like() -> None:
    ladder = Ladder.load()
    assert ladder.names()[:2] == ["free", "tier-1"]
    assert [t.spend_usd for t in ladder.tiers] == [0, 5, 50, 100, 250, 1000]
    assert ladder.for_spend(4.99).name == "free"
    assert ladder.for_spend(5).name == "tier-1"
    assert ladder.for_spend(10_000).name == "tier-5"
    assert ladder.resolve("tier-3", 0).name == "tier-3"
