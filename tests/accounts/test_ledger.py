"""The usage ledger: totals equal the ``usage`` replies; usage and costs pages; tier promotion."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from serverroom.catalog import Catalog
from serverroom.settings import LimitsSettings
from tests.accounts.conftest import Admin, AppFactory, sdk_for, write_tiers


def test_ledger_totals_equal_reported_usage(app_client: TestClient, admin: Admin) -> None:
    start = int(time.time()) - 5
    project = admin.project("ledger")
    key_id, key = admin.key(project)
    sdk = sdk_for(app_client, key)
    prompt = completion = cached = 0
    expected_cost = 0.0
    pricing = Catalog.load().resolve("gpt-4.1").pricing
    for i in range(4):
        reply = sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": f"count {i}"}], max_tokens=6
        )
        assert reply.usage is not None
        prompt += reply.usage.prompt_tokens
        completion += reply.usage.completion_tokens
        c = reply.usage.prompt_tokens_details.cached_tokens or 0  # type: ignore[union-attr]
        cached += c
        expected_cost += pricing.cost(reply.usage.prompt_tokens, c, reply.usage.completion_tokens)
    stream = sdk.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "stream"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            prompt += chunk.usage.prompt_tokens
            completion += chunk.usage.completion_tokens
            c = chunk.usage.prompt_tokens_details.cached_tokens or 0  # type: ignore[union-attr]
            cached += c
            expected_cost += pricing.cost(
                chunk.usage.prompt_tokens, c, chunk.usage.completion_tokens
            )

    page = admin.get(
        "/v1/organization/usage/completions",
        start_time=start,
        bucket_width="1m",
        **{"group_by[]": ["project_id", "model"], "project_ids[]": [project]},
    )
    assert page["object"] == "page"
    results = [r for b in page["data"] for r in b["results"]]
    assert all(b["object"] == "bucket" for b in page["data"])
    assert {r["project_id"] for r in results} == {project}
    assert {r["model"] for r in results} == {"gpt-4.1"}
    assert results[0]["object"] == "organization.usage.completions.result"
    assert sum(r["input_tokens"] for r in results) == prompt
    assert sum(r["output_tokens"] for r in results) == completion
    assert sum(r["input_cached_tokens"] for r in results) == cached
    assert sum(r["num_model_requests"] for r in results) == 5

    costs = admin.get(
        "/v1/organization/costs",
        start_time=start,
        bucket_width="1d",
        **{"group_by[]": ["project_id"], "project_ids[]": [project]},
    )
    amounts = [r for b in costs["data"] for r in b["results"]]
    assert amounts[0]["object"] == "organization.costs.result"
    assert amounts[0]["amount"]["currency"] == "usd"
    assert abs(sum(r["amount"]["value"] for r in amounts) - expected_cost) < 1e-9
    assert expected_cost > 0

    by_key = admin.get(
        "/v1/organization/usage/completions",
        start_time=start,
        bucket_width="1d",
        **{"group_by[]": ["api_key_id"]},
    )
    keys = {r["api_key_id"] for b in by_key["data"] for r in b["results"]}
    assert key_id in keys


def test_usage_buckets_are_paged(app_client: TestClient, admin: Admin) -> None:
    start = int(time.time()) - 3 * 3600
    page = admin.get(
        "/v1/organization/usage/completions", start_time=start, bucket_width="1h", limit=2
    )
    assert len(page["data"]) == 2 and page["has_more"] is True
    nxt = admin.get(
        "/v1/organization/usage/completions",
        start_time=start,
        bucket_width="1h",
        limit=2,
        page=page["next_page"],
    )
    assert nxt["data"][0]["start_time"] == page["data"][-1]["end_time"]
    bad = app_client.get(
        "/v1/organization/costs",
        headers=admin.headers,
        params={"start_time": start, "bucket_width": "7d"},
    )
    assert bad.status_code == 400
    missing = app_client.get("/v1/organization/costs", headers=admin.headers)
    assert missing.status_code == 400


def test_tier_rises_when_spend_crosses_a_threshold(tmp_path: Path, make_app: AppFactory) -> None:
    tiers = write_tiers(
        tmp_path / "tiers.toml",
        """
[[tier]]
name = "free"
spend_usd = 0
rpm = 100
tpm = 100000

[[tier]]
name = "tier-1"
spend_usd = 0.0001
rpm = 200
tpm = 200000
[tier.models."gpt-4.1"]
rpm = 300
""",
    )
    client = make_app(limits=LimitsSettings(tiers_file=tiers))  # type: ignore[call-arg]
    admin = Admin(client)
    project = admin.project("grower")
    _, key = admin.key(project)
    assert admin.get(f"/v1/organization/projects/{project}")["tier"] == "free"
    sdk = sdk_for(client, key)
    first = sdk.chat.completions.with_raw_response.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "a longer prompt " * 8}],
        max_tokens=8,
    )
    assert first.headers["x-ratelimit-limit-requests"] == "100"
    # gpt-4.1 costs $2/M input: ~40 tokens ≈ $0.00008; a few requests cross $0.0001
    for _ in range(3):
        sdk.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "a longer prompt " * 8}],
            max_tokens=8,
        )
    tier = admin.get(f"/v1/organization/projects/{project}/tier")
    assert tier["tier"] == "tier-1" and tier["spend_usd"] >= 0.0001
    later = sdk.chat.completions.with_raw_response.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert later.headers["x-ratelimit-limit-requests"] == "300"  # per-model override
    assert later.headers["x-ratelimit-limit-tokens"] == "200000"  # inherited default
    # an admin pin wins over spend
    pinned = admin.post(f"/v1/organization/projects/{project}/tier", {"tier": "free"})
    assert pinned["tier"] == "free" and pinned["pinned"] is True
    again = sdk.chat.completions.with_raw_response.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert again.headers["x-ratelimit-limit-requests"] == "100"


async def test_settle_reads_the_new_spend_back_without_another_query(tmp_path: Path) -> None:
    """Billing a request is one UPDATE ... RETURNING plus one INSERT; no extra project read."""
    from sqlalchemy import event

    from serverroom.accounts.ledger import Ledger
    from serverroom.accounts.limiter import Limiter
    from serverroom.accounts.metering import AccountsMetering
    from serverroom.accounts.repository import AccountsRepository
    from serverroom.accounts.tiers import Ladder, ModelLimits, Tier
    from serverroom.metering import Admission, Usage
    from serverroom.principal import Principal
    from serverroom.storage.db import Database

    db = Database(f"sqlite:///{tmp_path / 'l.db'}")
    await db.migrate()
    try:
        repo = AccountsRepository(db)
        project = await repo.create_project("p")
        ladder = Ladder(
            [Tier("free", 0, ModelLimits(10, 1000)), Tier("t1", 1e-6, ModelLimits(20, 2000))]
        )
        metering = AccountsMetering(
            repo=repo,
            ledger=Ledger(db),
            ladder=ladder,
            limits_enabled=True,
            limit_open_requests=False,
            limiter=Limiter(window_seconds=60, redis_url=None, prefix="t"),
        )
        principal = Principal(project_id=project.id, key_id="key_x")
        entry = Catalog.load().resolve("gpt-4.1")
        ticket = await metering.admit(
            Admission(
                principal, entry, endpoint="/v1/responses", prompt_tokens=10, max_output_tokens=5
            )
        )
        assert ticket.headers["x-ratelimit-limit-requests"] == "10"
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]).split()[0])

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        await ticket.settle(Usage(10, 0, 5))
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        assert statements == ["UPDATE", "INSERT"]
        assert (await metering.tier_of(project.id)).name == "t1"  # promoted, from the cache
        assert (await repo.get_project(project.id)).spend_usd > 0
    finally:
        await db.close()
