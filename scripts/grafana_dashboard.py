"""Write docs/grafana-dashboard.json: the example Grafana dashboard for serverroom's metrics
(docs/observability.md). Run ``python scripts/grafana_dashboard.py`` after changing a panel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}


def quantile(q: float, histogram: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[5m])))"


CACHED = 'sum(rate(serverroom_tokens_total{kind="cached_input"}[15m]))'
INPUT = 'sum(rate(serverroom_tokens_total{kind="input"}[15m]))'

PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Requests by route",
        "reqps",
        [
            ("sum by (route) (rate(serverroom_requests_total[5m]))", "{{route}}"),
        ],
    ),
    (
        "Error replies (4xx, 5xx)",
        "reqps",
        [
            (
                'sum by (status) (rate(serverroom_requests_total{status=~"[45].."}[5m]))',
                "{{status}}",
            ),
        ],
    ),
    (
        "Request latency p50 / p95",
        "s",
        [
            (
                quantile(0.5, "serverroom_request_duration_seconds"),
                "p50",
            ),
            (
                quantile(0.95, "serverroom_request_duration_seconds"),
                "p95",
            ),
        ],
    ),
    (
        "Time to first token p50 / p95",
        "s",
        [
            (
                quantile(0.5, "serverroom_time_to_first_token_seconds", "model"),
                "p50 {{model}}",
            ),
            (
                quantile(0.95, "serverroom_time_to_first_token_seconds", "model"),
                "p95 {{model}}",
            ),
        ],
    ),
    (
        "Output tokens per second",
        "short",
        [
            ('sum by (model) (rate(serverroom_tokens_total{kind="output"}[5m]))', "{{model}}"),
        ],
    ),
    (
        "Cached share of input tokens",
        "percentunit",
        [
            (
                f"{CACHED} / {INPUT}",
                "cached",
            ),
        ],
    ),
    (
        "Engine slots",
        "short",
        [
            ("sum by (model) (serverroom_engine_running_sequences)", "running {{model}}"),
            ("sum by (model) (serverroom_engine_queued_sequences)", "queued {{model}}"),
            ("sum by (model) (serverroom_engine_slots)", "slots {{model}}"),
        ],
    ),
    (
        "KV cache use",
        "percentunit",
        [
            ("max by (model) (serverroom_engine_kv_cache_usage_ratio)", "{{model}}"),
        ],
    ),
    (
        "Rate-limit refusals",
        "reqps",
        [
            (
                "sum by (project, limit) (rate(serverroom_rate_limit_rejections_total[5m]))",
                "{{project}} {{limit}}",
            ),
        ],
    ),
    (
        "Batch lines",
        "short",
        [
            ("max by (state) (serverroom_batch_requests)", "{{state}}"),
        ],
    ),
    (
        "Upstream members up",
        "short",
        [
            ("serverroom_upstream_member_up", "{{model}} {{url}}"),
        ],
    ),
    (
        "Time per output token p50",
        "s",
        [
            (
                quantile(0.5, "serverroom_time_per_output_token_seconds", "model"),
                "{{model}}",
            ),
        ],
    ),
]


def panel(number: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": number + 1,
        "type": "timeseries",
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (number % 2), "y": 8 * (number // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    return {
        "title": "serverroom",
        "uid": "serverroom",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": [panel(i, *spec) for i, spec in enumerate(PANELS)],
    }


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out}")
