"""The playground: a streamed Responses turn for a chosen project, then its tokens and cost."""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.dashboard.conftest import Browser, admin_headers
from tests.dashboard.test_pages import make_project


def stream_turn(browser: Browser, project: str, **body: object) -> list[dict[str, object]]:
    request = {"model": "gpt-4o-mini", "stream": True, **body}
    with browser.client.stream(
        "POST",
        f"/dashboard/playground/responses?project={project}",
        json=request,
        headers={"X-Dashboard-Token": browser.token},
    ) as reply:
        assert reply.status_code == 200, reply.read()
        text = "".join(reply.iter_text())
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def test_a_turn_streams_chains_and_is_billed_to_the_project(browser: Browser) -> None:
    pid, _ = make_project(browser.client, "Play")
    page = browser.get("/dashboard/playground")
    assert page.status_code == 200 and "gpt-4o-mini" in page.text and "Play" in page.text
    events = stream_turn(browser, pid, input="hello there")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    first = events[-1]["response"]
    assert isinstance(first, dict)
    again = stream_turn(browser, pid, input="more", previous_response_id=first["id"])
    second = again[-1]["response"]
    assert isinstance(second, dict) and second["previous_response_id"] == first["id"]
    turn = browser.get(f"/dashboard/playground/turns/{second['id']}")
    usage = second["usage"]
    assert isinstance(usage, dict)
    assert (
        f"{usage['input_tokens']:,} in" in turn.text
        and f"{usage['output_tokens']:,} out" in turn.text
    )
    assert re.search(r'class="turn-cost">\$0\.0', turn.text)
    costs = browser.client.get(
        "/v1/organization/usage/completions",
        params={"start_time": int(time.time()) - 60, "group_by": ["project_id"]},
        headers=admin_headers(),
    ).json()
    mine = [r for b in costs["data"] for r in b["results"] if r["project_id"] == pid]
    assert sum(r["num_model_requests"] for r in mine) == 2


def post_turn(browser: Browser, query: str, body: dict[str, object]) -> httpx.Response:
    headers = {"X-Dashboard-Token": browser.token}
    return browser.client.post(
        f"/dashboard/playground/responses{query}", json=body, headers=headers
    )


def test_the_playground_refuses_bad_turns_as_html(browser: Browser) -> None:
    hi = {"model": "gpt-4o-mini", "input": "hi"}
    missing = post_turn(browser, "?project=proj_nope", hi)
    assert missing.status_code == 404 and 'class="error"' in missing.text
    invalid = post_turn(browser, "", {**hi, "temperature": 7})
    assert invalid.status_code == 400 and "temperature" in invalid.text
    unknown = post_turn(browser, "", {**hi, "model": "no-such-model"})
    assert unknown.status_code == 404 and "no-such-model" in unknown.text
    forged = browser.client.post("/dashboard/playground/responses", json=hi)
    assert forged.status_code == 403


def test_an_archived_project_takes_no_turns(browser: Browser) -> None:
    pid, _ = make_project(browser.client, "Old")
    browser.client.post(f"/v1/organization/projects/{pid}/archive", headers=admin_headers())
    reply = post_turn(browser, f"?project={pid}", {"model": "gpt-4o-mini", "input": "hi"})
    assert reply.status_code == 400 and "archived" in reply.text
