"""Project isolation at the Principal level: one project's key cannot see another's objects."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from tests.accounts.conftest import Admin, sdk_for


def test_stored_response_is_invisible_to_another_project(
    app_client: TestClient, admin: Admin
) -> None:
    _, key_a = admin.key(admin.project("team-a"))
    _, key_b = admin.key(admin.project("team-b"))
    sdk_a, sdk_b = sdk_for(app_client, key_a), sdk_for(app_client, key_b)
    created = sdk_a.responses.create(model="gpt-4.1-mini", input="hello", max_output_tokens=8)
    assert sdk_a.responses.retrieve(created.id).id == created.id
    with pytest.raises(openai.NotFoundError):
        sdk_b.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk_b.responses.delete(created.id)
    assert sdk_a.responses.retrieve(created.id).id == created.id


def test_project_key_cannot_reach_other_projects_keys(app_client: TestClient, admin: Admin) -> None:
    project_a = admin.project("a")
    key_a_id, _ = admin.key(project_a)
    _, key_b = admin.key(admin.project("b"))
    r = app_client.get(
        f"/v1/organization/projects/{project_a}/api_keys/{key_a_id}",
        headers={"Authorization": f"Bearer {key_b}"},
    )
    assert r.status_code == 403
    # a key is only addressable under its own project
    other = admin.project("c")
    r = app_client.get(
        f"/v1/organization/projects/{other}/api_keys/{key_a_id}", headers=admin.headers
    )
    assert r.status_code == 404
