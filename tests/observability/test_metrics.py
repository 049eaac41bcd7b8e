"""``GET /metrics`` on the fake engine: the Prometheus text changes as work happens. A chat
counts its request, tokens and generation; a streamed response its time to first token; a
rate-limited request its 429 and refusal; a batch its lines by state; while authentication is
on, only an admin key (or ``metrics.public``) reads it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serverroom.app import create_app
from serverroom.settings import BatchSettings, LimitsSettings, MetricsSettings
from tests.accounts.conftest import ADMIN_KEY, Admin, AppFactory, make_app, sdk_for, write_tiers
from tests.conftest import fake_settings

MODEL = "gpt-4.1-mini"
__all__ = ["make_app"]  # the accounts tests' app fixture, used here too
TARGET = "smollm2-135m-instruct"


def scrape(
    client: TestClient, key: str | None = None
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_a_chat_and_a_stream_change_the_counters(client: TestClient, sdk: openai.OpenAI) -> None:
    before = scrape(client)
    reply = sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert reply.usage is not None
    list(sdk.responses.create(model=MODEL, input="hello", stream=True, max_output_tokens=8))
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chat = {"route": "/v1/chat/completions", "method": "POST", "status": "200", "model": MODEL}
    assert grew("serverroom_requests_total", **chat) == 1
    assert grew("serverroom_requests_total", route="/v1/responses", model=MODEL) == 1
    assert grew("serverroom_request_duration_seconds_count", route="/v1/chat/completions") == 1
    assert grew("serverroom_tokens_total", model=MODEL, kind="input") >= reply.usage.prompt_tokens
    assert (
        grew("serverroom_tokens_total", model=MODEL, kind="output") >= reply.usage.completion_tokens
    )
    assert grew("serverroom_generations_total", model=TARGET) == 2
    assert grew("serverroom_time_to_first_token_seconds_count", model=TARGET) == 2
    assert grew("serverroom_queue_wait_seconds_count", model=TARGET) == 2
    assert value(after, "serverroom_engine_slots", model=TARGET) == 4
    assert value(after, "serverroom_engine_running_sequences", model=TARGET) == 0
    assert value(after, "serverroom_model_ready", model=TARGET) == 1
    assert grew("serverroom_requests_total", route="/metrics") == 1  # the first scrape


def test_an_unknown_path_is_one_unmatched_route(client: TestClient) -> None:
    client.get("/v1/no/such/thing")
    client.get("/v1/other/missing")
    samples = scrape(client)
    assert value(samples, "serverroom_requests_total", route="unmatched", status="404") == 2


def test_a_429_is_counted(tmp_path: Path, make_app: AppFactory) -> None:
    tiers = write_tiers(
        tmp_path / "tiers.toml", '[[tier]]\nname = "free"\nspend_usd = 0\nrpm = 1\ntpm = 100000\n'
    )
    client = make_app(limits=LimitsSettings(tiers_file=tiers, window_seconds=60))  # type: ignore[call-arg]
    admin = Admin(client)
    project = admin.project("busy")
    _, key = admin.key(project)
    messages = [{"role": "user", "content": "hi"}]
    sdk = sdk_for(client, key)
    sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)  # type: ignore[arg-type]
    try:
        sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)  # type: ignore[arg-type]
    except openai.RateLimitError:
        pass
    else:
        raise AssertionError("the second request was not limited")
    samples = scrape(client, ADMIN_KEY)
    limited = {"model": MODEL, "project": project, "limit": "requests"}
    assert value(samples, "serverroom_rate_limit_rejections_total", **limited) == 1
    assert value(samples, "serverroom_requests_total", status="429", project=project) == 1
    assert value(samples, "serverroom_requests_total", status="200", project=project) == 1


def test_metrics_take_an_admin_key_while_auth_is_on(tmp_path: Path, make_app: AppFactory) -> None:
    client = make_app()
    admin = Admin(client)
    _, key = admin.key(admin.project("p"))
    assert client.get("/metrics").status_code == 401
    reply = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 403 and reply.json()["error"]["message"]
    scrape(client, ADMIN_KEY)
    public = make_app(metrics=MetricsSettings(public=True))
    scrape(public)


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, metrics=MetricsSettings(enabled=False))
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 404


def test_batch_lines_by_state(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, batch=BatchSettings(poll_seconds=0.2))
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        lines = [
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": body,
                }
            )
            for i in range(3)
        ]
        upload = sdk.files.create(
            file=("in.jsonl", ("\n".join(lines) + "\n").encode()), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 30
        while sdk.batches.retrieve(batch.id).status != "completed":
            assert time.monotonic() < deadline, "the batch did not finish"
            time.sleep(0.1)
        samples = scrape(client)
        assert value(samples, "serverroom_batch_requests", state="completed") == 3
        assert value(samples, "serverroom_batches", status="completed") == 1
        assert value(samples, "serverroom_tokens_total", model=MODEL, kind="output") > 0


def _exposed_names() -> set[str]:
    from serverroom.observability.metrics import Metrics

    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names |= {f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum")}
    return names


def test_the_dashboard_and_the_docs_name_real_metrics() -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    from scripts.grafana_dashboard import dashboard

    assert json.loads((root / "docs" / "grafana-dashboard.json").read_text()) == dashboard()
    exposed = _exposed_names()
    for text in (
        (root / "docs" / "grafana-dashboard.json").read_text(),
        (root / "docs" / "observability.md").read_text(),
    ):
        named = set(re.findall(r"serverroom_[a-z_]+", text))
        assert named and named <= exposed, named - exposed
