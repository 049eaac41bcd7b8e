"""The accounts flow on PostgreSQL: keys, revocation, ledger, usage page, tier spend."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import openai
import pytest

from tests.accounts.conftest import Admin, AppFactory, sdk_for

pytestmark = pytest.mark.postgres
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = f"sr_accounts_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError:
        pytest.skip("PostgreSQL is not running")
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
