"""``/metrics`` on a real server with the bundled model: after a chat and a streamed response
through the SDK, the request, token and engine metrics have moved, and the llama.cpp engine
reports the prompt it keeps in its KV cache."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live.server import LiveServer

pytestmark = pytest.mark.live


def _samples(server: LiveServer) -> dict[str, float]:
    reply = httpx.get(f"{server.root_url}/metrics", timeout=10)
    assert reply.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def _sum(samples: dict[str, float], prefix: str, *parts: str) -> float:
    return sum(
        v for k, v in samples.items() if k.startswith(prefix + "{") and all(p in k for p in parts)
    )


def test_metrics_move_with_real_work(live_env: LiveServer, live_client: openai.OpenAI) -> None:
    before = _samples(live_env)
    live_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
    )
    list(
        live_client.responses.create(
            model="gpt-4o-mini", input="Hi!", max_output_tokens=8, stream=True
        )
    )
    after = _samples(live_env)

    def grew(prefix: str, *parts: str) -> float:
        return _sum(after, prefix, *parts) - _sum(before, prefix, *parts)

    assert grew("serverroom_requests_total", "route=/v1/chat/completions", "status=200") == 1
    assert grew("serverroom_requests_total", "route=/v1/responses", "model=gpt-4o-mini") == 1
    assert grew("serverroom_tokens_total", "kind=output", "model=gpt-4o-mini") >= 2
    assert grew("serverroom_time_to_first_token_seconds_count") >= 2
    assert _sum(after, "serverroom_engine_kv_cache_tokens") > 0  # the prompts stay cached
    assert 0 < _sum(after, "serverroom_engine_kv_cache_usage_ratio") <= 1
    assert _sum(after, "serverroom_engine_slots") >= 1
