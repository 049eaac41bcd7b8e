"""Forced tool calls on single-intent prompts: how many calls, how valid, how long.

Starts ``serverroom serve`` with the bundled model and sends 20 single-intent requests to the
Responses API with one strict function tool and ``tool_choice="required"`` (the case where a
small model used to chain invented calls or run an argument to the reply limit). Prints, per
run and in total: calls per response, the share of calls whose arguments parse and name a
plausible city, output tokens and wall time.

    python bench/tool_calls.py [--url http://127.0.0.1:8000/v1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

CITIES = [
    "Rome", "Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Berlin", "Madrid", "Sydney",
    "Toronto", "Nairobi", "Seoul", "Dublin", "Lisbon", "Vienna", "Prague", "Athens", "Havana",
    "Quito",
]  # fmt: skip
PLAUSIBLE = re.compile(r"[^\W\d_][\w .'-]{0,39}")  # a name-like string, not "{city}" or ""
TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name."}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def start_server(port: int) -> subprocess.Popen[bytes]:
    data = Path(tempfile.mkdtemp(prefix="toolbench-"))
    cmd = [sys.executable, "-m", "serverroom", "serve", "--port", str(port)]
    cmd += ["--data_dir", str(data), "--engine.slot_context", "4096"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


def one(client: openai.OpenAI, city: str) -> dict[str, Any]:
    started = time.monotonic()
    response = client.responses.create(
        model="gpt-4.1",
        input=f"What is the weather in {city}?",
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="required",
    )
    wall = time.monotonic() - started
    calls = [item for item in response.output if item.type == "function_call"]
    valid = 0
    for call in calls:
        try:
            value = json.loads(call.arguments).get("city", "")
        except (json.JSONDecodeError, AttributeError):
            continue
        valid += isinstance(value, str) and PLAUSIBLE.fullmatch(value) is not None
    usage = response.usage
    return {
        "city": city,
        "calls": len(calls),
        "valid": valid,
        "first": calls[0].arguments if calls else "",
        "right": bool(calls) and city in calls[0].arguments,
        "tokens": usage.output_tokens if usage else 0,
        "wall": wall,
        "status": response.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server's base URL (default: start one)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    proc = None
    url = args.url
    if url is None:
        port = 8765
        proc = start_server(port)
        url = f"http://127.0.0.1:{port}/v1"
    client = openai.OpenAI(base_url=url, api_key="sk-bench", timeout=600)
    try:
        rows = [one(client, city) for _ in range(args.rounds) for city in CITIES]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    for row in rows:
        print(
            f"{row['city']:<8} calls {row['calls']}  valid {row['valid']}  tokens"
            f" {row['tokens']:4d}  {row['wall']:5.1f} s  {row['status']:<10} {row['first'][:50]}"
        )
    calls = [r["calls"] for r in rows]
    walls = [r["wall"] for r in rows]
    print(
        f"\n{len(rows)} responses: calls/response mean {statistics.mean(calls):.2f} max"
        f" {max(calls)}; valid calls {sum(r['valid'] for r in rows)}/{sum(calls)};"
        f" output tokens median {statistics.median(r['tokens'] for r in rows):.0f} max"
        f" {max(r['tokens'] for r in rows)}; first call names the city"
        f" {sum(r['right'] for r in rows)}/{len(rows)}; wall median"
        f" {statistics.median(walls):.1f} s max {max(walls):.1f} s"
    )


if __name__ == "__main__":
    main()
