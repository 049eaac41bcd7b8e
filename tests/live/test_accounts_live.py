"""Live accounts tests: two ``serverroom serve`` processes on one database and one Redis.

They use the fake engine (``SERVERROOM_ENGINE__KIND=fake``) so they start at once; the shared
Redis database gets a unique key prefix per test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.live.server import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.redis]

ADMIN_KEY = "sk-admin-" + "L" * 40
TIERS = """
[[tier]]
name = "free"
spend_usd = 0
rpm = 6
tpm = 1000000
"""


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS)
    env = {
        "SERVERROOM_ENGINE__KIND": "fake",
        "SERVERROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "SERVERROOM_REDIS_URL": "redis://127.0.0.1:6379/7",
        "SERVERROOM_LIMITS__REDIS_PREFIX": f"test-{uuid.uuid4().hex}",
        "SERVERROOM_LIMITS__TIERS_FILE": str(tiers),
        "SERVERROOM_AUTH__ADMIN_KEY": ADMIN_KEY,
        "SERVERROOM_AUTH__CACHE_SECONDS": "30",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = LiveServer(tmp_path / "a", env=env)
    second = LiveServer(tmp_path / "b", env=env)
    first.start()
    try:
        second.start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def _admin(server: LiveServer, method: str, path: str, json: object = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{server.base_url}{path}",
        json=json,
        timeout=30,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )


def _project_key(server: LiveServer, name: str) -> tuple[str, str, str]:
    project = _admin(server, "POST", "/organization/projects", {"name": name}).json()["id"]
    created = _admin(server, "POST", f"/organization/projects/{project}/api_keys", {}).json()
    return project, created["id"], created["value"]


def _chat(server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "gpt-4.1-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        },
    )


def test_two_replicas_share_one_limit(replicas: tuple[LiveServer, LiveServer]) -> None:
    a, b = replicas
    _, _, key = _project_key(a, "shared")
    codes = [_chat(server, key).status_code for server in (a, b) * 8]
    assert codes.count(200) == 6, codes
    assert codes.count(429) == 10
    # both replicas refused once the shared budget was spent
    assert 429 in codes[0::2] and 429 in codes[1::2]


def test_revocation_reaches_every_replica(replicas: tuple[LiveServer, LiveServer]) -> None:
    a, b = replicas
    project, key_id, key = _project_key(a, "revoked")
    assert _chat(b, key).status_code == 200  # b verifies and caches the key
    assert (
        _admin(a, "DELETE", f"/organization/projects/{project}/api_keys/{key_id}").json()["deleted"]
        is True
    )
    for server in (b, a):
        r = _chat(server, key)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_api_key"
    client = openai.OpenAI(api_key=key, base_url=b.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_usage_is_seen_from_either_replica(replicas: tuple[LiveServer, LiveServer]) -> None:
    a, b = replicas
    start = int(time.time()) - 5
    project, _, key = _project_key(a, "usage")
    sdk = openai.OpenAI(api_key=key, base_url=b.base_url, max_retries=0)
    reply = sdk.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=3
    )
    assert reply.usage is not None
    query = (
        f"/organization/usage/completions?start_time={start}&group_by[]=project_id"
        f"&project_ids[]={project}"
    )
    deadline = time.monotonic() + 5  # b writes its row within ledger.flush_seconds (0.05 s)
    while True:
        page = _admin(a, "GET", query).json()
        results = [r for bucket in page["data"] for r in bucket["results"]]
        if results or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(r["input_tokens"] for r in results) == reply.usage.prompt_tokens
    assert sum(r["output_tokens"] for r in results) == reply.usage.completion_tokens
