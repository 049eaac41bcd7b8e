"""Files API through the official SDK: upload, list, retrieve, content, delete, limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.context import get_principal
from serverroom.principal import Principal
from tests.conftest import fake_settings


def test_upload_retrieve_content_delete(sdk: openai.OpenAI, tmp_path: Path) -> None:
    payload = b'{"a": 1}\n{"b": 2}\n'
    created = sdk.files.create(file=("data.jsonl", payload), purpose="batch")
    assert created.id.startswith("file-")
    assert created.object == "file"
    assert created.bytes == len(payload)
    assert created.filename == "data.jsonl"
    assert created.purpose == "batch"
    assert created.status == "processed"
    assert sdk.files.retrieve(created.id).id == created.id
    assert sdk.files.wait_for_processing(created.id).status == "processed"
    assert sdk.files.content(created.id).content == payload
    assert (tmp_path / "files" / created.id).read_bytes() == payload
    deleted = sdk.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    assert not (tmp_path / "files" / created.id).exists()
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.files.delete(created.id)


def test_list_order_filter_and_pages(sdk: openai.OpenAI) -> None:
    ids = [
        sdk.files.create(file=(f"f{i}.txt", b"x" * i), purpose="user_data" if i % 2 else "batch").id
        for i in range(5)
    ]
    listed = sdk.files.list()
    assert [f.id for f in listed.data] == ids[::-1]  # newest first
    assert listed.has_more is False
    assert [f.id for f in sdk.files.list(order="asc").data] == ids
    assert [f.id for f in sdk.files.list(purpose="user_data").data] == [ids[3], ids[1]]
    page = sdk.files.list(limit=2)
    assert [f.id for f in page.data] == [ids[4], ids[3]] and page.has_more is True
    assert [f.id for f in sdk.files.list(limit=2)] == ids[::-1]
    assert [f.id for f in sdk.files.list(after=ids[2]).data] == [ids[1], ids[0]]


def test_expires_after_sets_expires_at(sdk: openai.OpenAI) -> None:
    created = sdk.files.create(
        file=("e.txt", b"bye"),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600
    with pytest.raises(openai.BadRequestError):
        sdk.files.create(
            file=("e.txt", b"bye"),
            purpose="user_data",
            expires_after={"anchor": "created_at", "seconds": 5},
        )


def test_bad_purpose_and_missing_file(sdk: openai.OpenAI, client: TestClient) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        sdk.files.create(file=("a.txt", b"a"), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.body["param"] == "purpose"  # type: ignore[index]
    reply = client.post("/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"a")})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "file"


def test_size_limit_is_413(tmp_path: Path) -> None:
    settings = fake_settings(tmp_path, max_file_bytes=1000)
    with TestClient(create_app(settings)) as client:
        sdk = openai.OpenAI(
            api_key="sk", base_url="http://testserver/v1", http_client=client, max_retries=0
        )
        assert sdk.files.create(file=("ok.txt", b"x" * 1000), purpose="user_data").bytes == 1000
        with pytest.raises(openai.APIStatusError) as err:
            sdk.files.create(file=("big.txt", b"x" * 1001), purpose="user_data")
        assert err.value.status_code == 413
        assert err.value.body["code"] == "file_too_large"  # type: ignore[index]
        with pytest.raises(openai.APIStatusError) as err:
            sdk.files.create(file=("huge.txt", b"x" * 200_000), purpose="user_data")
        assert err.value.status_code == 413
        assert [p.name for p in (tmp_path / "files").iterdir()] == [sdk.files.list().data[0].id]


def test_files_are_scoped_to_the_project(client: TestClient, sdk: openai.OpenAI) -> None:
    mine = sdk.files.create(file=("m.txt", b"mine"), purpose="user_data")
    client.app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        assert sdk.files.list().data == []
        for call in (sdk.files.retrieve, sdk.files.content, sdk.files.delete):
            with pytest.raises(openai.NotFoundError):
                call(mine.id)
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert sdk.files.retrieve(mine.id).id == mine.id


def test_content_is_raw_bytes(sdk: openai.OpenAI, client: TestClient) -> None:
    blob = bytes(range(256))
    created = sdk.files.create(file=("b.bin", blob), purpose="user_data")
    reply: httpx.Response = client.get(f"/v1/files/{created.id}/content")
    assert reply.status_code == 200 and reply.content == blob
