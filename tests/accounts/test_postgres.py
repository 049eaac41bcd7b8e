"""The accounts flow on PostgreSQL: keys, revocation, ledger, usage page, tier spend."""

from __future__ import annotations

import time

import openai
import pytest

from tests.accounts.conftest import Admin, AppFactory, sdk_for

pytestmark = pytest.mark.postgres


def test_accounts_on_postgres(make_app: AppFactory, pg_url: str) -> None:
    start = int(time.time()) - 5
    client = make_app(database_url=pg_url)
    admin = Admin(client)
    project = admin.project("pg")
    key_id, key = admin.key(project)
    reply = sdk_for(client, key).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert reply.usage is not None
    page = admin.get(
        "/v1/organization/usage/completions",
        start_time=start,
        **{"group_by[]": ["project_id"], "project_ids[]": [project]},
    )
    results = [r for b in page["data"] for r in b["results"]]
    assert sum(r["input_tokens"] for r in results) == reply.usage.prompt_tokens
    assert admin.get(f"/v1/organization/projects/{project}/tier")["spend_usd"] > 0
    admin.revoke(project, key_id)
    with pytest.raises(openai.AuthenticationError):
        sdk_for(client, key).models.list()
