"""The dashboard's pages on the fake engine: usage, projects and keys, responses,
conversations, batches and files, driven as a signed-in admin's browser would."""

from __future__ import annotations

import io
import json
import re
import time

import openai
from fastapi.testclient import TestClient

from tests.dashboard.conftest import Browser, admin_headers


def make_project(client: TestClient, name: str) -> tuple[str, str]:
    """A project made through the admin API and a key of it: (project id, key value)."""
    project = client.post("/v1/organization/projects", json={"name": name}, headers=admin_headers())
    pid = project.json()["id"]
    key = client.post(f"/v1/organization/projects/{pid}/api_keys", json={}, headers=admin_headers())
    return pid, key.json()["value"]


def sdk_for(client: TestClient, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key, base_url="http://testserver/v1", http_client=client, max_retries=0
    )


def test_usage_page_charts_tokens_and_cost_per_project_and_model(browser: Browser) -> None:
    _pid, key = make_project(browser.client, "Charts")
    sdk = sdk_for(browser.client, key)
    for _ in range(2):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=8
        )
    page = browser.get("/dashboard/usage")
    assert page.status_code == 200
    assert re.search(r'id="total-requests">2<', page.text)
    assert "Charts" in page.text  # the project's name labels its series and row
    assert page.text.count("<svg") == 2 and "<rect" in page.text
    by_model = browser.get("/dashboard/usage", group="model", days=3)
    assert "gpt-4o-mini" in by_model.text and re.search(r'id="total-requests">2<', by_model.text)
    bad = browser.get("/dashboard/usage", group="colour")
    assert bad.status_code == 400 and "group" in bad.text


def test_cached_share_comes_from_the_ledger(browser: Browser) -> None:
    _pid, key = make_project(browser.client, "Cache")
    sdk = sdk_for(browser.client, key)
    prompt = "a long shared system prompt " * 40
    for _ in range(2):
        sdk.responses.create(model="gpt-4o-mini", instructions=prompt, input="hi")
    page = browser.get("/dashboard/usage")
    totals = browser.client.get(
        "/v1/organization/usage/completions",
        params={"start_time": int(time.time()) - 86400},
        headers=admin_headers(),
    ).json()
    results = [r for b in totals["data"] for r in b["results"]]
    cached = sum(r["input_cached_tokens"] for r in results)
    share = 100 * cached / sum(r["input_tokens"] for r in results)
    assert re.search(rf'id="total-cached-share">{share:.1f}%<', page.text), share


def test_keys_are_created_once_shown_and_revoked(browser: Browser) -> None:
    pid, _ = make_project(browser.client, "Keys")
    made = browser.post(f"/dashboard/projects/{pid}/keys", data={"name": "app"})
    assert made.status_code == 200
    secret = re.search(r'id="new-key-secret" readonly value="(sk-proj-[^"]+)"', made.text)
    assert secret is not None
    value = secret.group(1)
    reply = sdk_for(browser.client, value).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert reply.choices[0].message.content
    page = browser.get(f"/dashboard/projects/{pid}")
    assert value not in page.text  # the secret is shown only once
    key_id = re.search(r'data-key-id="(key_[^"]+)">\s*<td>app</td>', page.text)
    assert key_id is not None
    gone = browser.post(f"/dashboard/projects/{pid}/keys/{key_id.group(1)}/revoke")
    assert gone.status_code == 200 and "revoked" in gone.text
    try:
        sdk_for(browser.client, value).models.list()
        raise AssertionError("a revoked key still works")
    except openai.AuthenticationError:
        pass
    log = browser.client.get("/v1/organization/audit_logs", headers=admin_headers()).json()
    mine = [e for e in log["data"] if e["type"].startswith("api_key.")][:2]
    assert [e["type"] for e in mine] == ["api_key.deleted", "api_key.created"]
    signed_in = browser.client.get("/v1/organization/admin_api_keys", headers=admin_headers())
    admin_id = signed_in.json()["data"][0]["id"]
    for entry in mine:  # made in the dashboard: the admin's session, from the browser
        assert entry["actor"] == {
            "type": "session",
            "session": {"user": {"id": admin_id, "email": None}, "ip_address": "testclient"},
        }
    by_api = next(e for e in log["data"] if e["type"] == "project.created")
    assert by_api["actor"]["type"] == "api_key" and by_api["actor"]["api_key"]["id"] == admin_id


def test_tier_and_spend_limit_forms_change_the_project(browser: Browser) -> None:
    pid, _ = make_project(browser.client, "Limits")
    page = browser.post(f"/dashboard/projects/{pid}/spend_limit", data={"monthly_usd": "2.5"})
    assert page.status_code == 200 and 'id="month-limit">$2.5000<' in page.text
    api = browser.client.get(
        f"/v1/organization/projects/{pid}/spend_limit", headers=admin_headers()
    )
    assert api.json()["monthly_usd"] == 2.5
    bad = browser.post(f"/dashboard/projects/{pid}/spend_limit", data={"monthly_usd": "-1"})
    assert bad.status_code == 400 and 'class="error"' in bad.text
    assert bad.headers["HX-Retarget"] == "#flash"
    words = browser.post(f"/dashboard/projects/{pid}/spend_limit", data={"monthly_usd": "lots"})
    assert words.status_code == 400 and "lots" in words.text
    tiers = browser.client.get(f"/v1/organization/projects/{pid}/tier", headers=admin_headers())
    top = re.findall(
        r'<option value="(tier-[^"]+|[a-z0-9_-]+)"', browser.get(f"/dashboard/projects/{pid}").text
    )
    assert tiers.json()["tier"] in top
    pinned = browser.post(f"/dashboard/projects/{pid}/tier", data={"tier": top[-1]})
    assert pinned.status_code == 200 and f'id="tier-name">{top[-1]}<' in pinned.text
    unknown = browser.post(f"/dashboard/projects/{pid}/tier", data={"tier": "platinum-plus"})
    assert unknown.status_code == 400 and "Unknown tier" in unknown.text


def test_projects_are_created_and_archived(browser: Browser) -> None:
    made = browser.post("/dashboard/projects", data={"name": "Shortlived"})
    assert made.status_code == 204
    pid = made.headers["HX-Redirect"].rsplit("/", 1)[1]
    assert "Shortlived" in browser.get("/dashboard/projects").text
    archived = browser.post(f"/dashboard/projects/{pid}/archive")
    assert archived.status_code == 200 and "archived" in archived.text
    refused = browser.post(f"/dashboard/projects/{pid}/keys", data={})
    assert refused.status_code == 400 and "archived" in refused.text
    default = browser.post("/dashboard/projects/proj_default/archive")
    assert default.status_code == 400


def test_stored_responses_are_listed_searched_and_shown(browser: Browser) -> None:
    _pid, key = make_project(browser.client, "Stored")
    sdk = sdk_for(browser.client, key)
    first = sdk.responses.create(model="gpt-4o-mini", input="tell me about zebras")
    second = sdk.responses.create(
        model="gpt-4o-mini", input="and giraffes", previous_response_id=first.id
    )
    listed = browser.get("/dashboard/responses")
    assert first.id in listed.text and second.id in listed.text
    found = browser.client.get(
        "/dashboard/responses", params={"q": "ZEBRAS"}, headers={"HX-Request": "true"}
    )
    assert first.id in found.text and second.id not in found.text and "<html" not in found.text
    none = browser.get("/dashboard/responses", q="100%_nothing")
    assert "No stored responses" in none.text
    other = browser.get("/dashboard/responses", project="proj_default")
    assert first.id not in other.text
    detail = browser.get(f"/dashboard/responses/{second.id}")
    assert detail.status_code == 200 and "and giraffes" in detail.text
    assert second.output_text[:20] in detail.text.replace("&#39;", "'")
    assert first.id in detail.text  # the chain's link
    assert re.search(r'id="response-cost">\$0\.0', detail.text)
    assert browser.get("/dashboard/responses/resp_missing").status_code == 404


def test_conversations_are_listed_searched_and_shown(browser: Browser) -> None:
    _, key = make_project(browser.client, "Talk")
    sdk = sdk_for(browser.client, key)
    conv = sdk.conversations.create(
        metadata={"topic": "weather"}, items=[{"role": "user", "content": "is it raining?"}]
    )
    sdk.responses.create(model="gpt-4o-mini", input="and tomorrow?", conversation=conv.id)
    assert conv.id in browser.get("/dashboard/conversations").text
    for q in ("weather", "raining", conv.id[-6:]):
        assert conv.id in browser.get("/dashboard/conversations", q=q).text, q
    assert conv.id not in browser.get("/dashboard/conversations", q="snow").text
    detail = browser.get(f"/dashboard/conversations/{conv.id}")
    assert "is it raining?" in detail.text and "and tomorrow?" in detail.text


def test_batches_and_files_show_state_and_progress(browser: Browser) -> None:
    _, key = make_project(browser.client, "Batch")
    sdk = sdk_for(browser.client, key)
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(3)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    upload = sdk.files.create(file=("lines.jsonl", io.BytesIO(data)), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.time() + 30
    while sdk.batches.retrieve(batch.id).status != "completed" and time.time() < deadline:
        time.sleep(0.1)
    page = browser.get("/dashboard/batches")
    assert batch.id in page.text and upload.id in page.text and "lines.jsonl" in page.text
    assert 'class="status-completed"' in page.text and "3/3" in page.text
