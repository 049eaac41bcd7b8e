"""Monthly spend limits: once a project's ledger spend this month reaches its limit, requests
get the platform's 429 ``insufficient_quota`` (which the SDK does not retry); the admin API
sets, reads and lifts the limit; alerts are logged as spend passes its thresholds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openai
import pytest

from serverroom.accounts.quota import month_start
from serverroom.settings import LimitsSettings
from tests.accounts.conftest import Admin, AppFactory, sdk_for

MODEL = "gpt-4.1-mini"
MESSAGES = [{"role": "user", "content": "hello there"}]


def test_a_project_past_its_limit_gets_insufficient_quota(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app()
    admin = Admin(client)
    project = admin.project("thrifty")
    _, key = admin.key(project)
    limit = admin.post(f"/v1/organization/projects/{project}/spend_limit", {"monthly_usd": 1e-7})
    assert limit["monthly_usd"] == 1e-7 and limit["spent_this_month_usd"] == 0
    assert limit["month_start"] == month_start()
    sdk = sdk_for(client, key, max_retries=3)
    sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="serverroom.accounts.spend"):
        spend = admin.get(f"/v1/organization/projects/{project}/spend_limit")
    assert spend["spent_this_month_usd"] > 1e-7
    assert "100% of its $0.00 monthly spend limit" in caplog.text
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    error = caught.value
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert error.response.headers["x-should-retry"] == "false"  # the SDK gave up at once
    assert "You exceeded your current quota" in error.message
    with pytest.raises(openai.RateLimitError):  # the Responses API too
        sdk.responses.create(model=MODEL, input="hi", max_output_tokens=4)
    lifted = admin.post(f"/v1/organization/projects/{project}/spend_limit", {"monthly_usd": None})
    assert lifted["monthly_usd"] is None
    sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]


def test_other_projects_are_not_limited(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    limited, free = admin.project("limited"), admin.project("free")
    admin.post(f"/v1/organization/projects/{limited}/spend_limit", {"monthly_usd": 0})
    with pytest.raises(openai.RateLimitError):
        sdk_for(client, admin.key(limited)[1]).chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=4,
        )
    sdk_for(client, admin.key(free)[1]).chat.completions.create(
        model=MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=4,
    )


def test_a_negative_limit_is_a_400(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    project = admin.project("p")
    reply = client.post(
        f"/v1/organization/projects/{project}/spend_limit",
        json={"monthly_usd": -1},
        headers=admin.headers,
    )
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "monthly_usd"


def test_spend_alerts_are_posted_where_configured(tmp_path: Path, make_app: AppFactory) -> None:
    from tests.api.test_webhooks import Receiver

    receiver = Receiver()
    try:
        client = make_app(limits=LimitsSettings(spend_alert_url=receiver.url))  # type: ignore[call-arg]
        admin = Admin(client)
        project = admin.project("watched")
        _, key = admin.key(project)
        admin.post(f"/v1/organization/projects/{project}/spend_limit", {"monthly_usd": 1e-7})
        sdk_for(client, key).chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=4,
        )
        admin.get(f"/v1/organization/projects/{project}/spend_limit")  # reads the new spend
        alerts = [json.loads(body) for body, _ in receiver.wait(3)]
        assert sorted(a["threshold"] for a in alerts) == [0.5, 0.8, 1.0]
        assert all(a["type"] == "spend.alert" and a["project_id"] == project for a in alerts)
    finally:
        receiver.server.shutdown()


def test_this_months_spend_is_reported_without_a_limit(make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    project = admin.project("unlimited")
    _, key = admin.key(project)
    sdk_for(client, key).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)  # type: ignore[arg-type]
    spend = admin.get(f"/v1/organization/projects/{project}/spend_limit")
    assert spend["monthly_usd"] is None and spend["spent_this_month_usd"] > 0
