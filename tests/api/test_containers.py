"""The Containers API through the official SDK, in-process: containers and their files
(uploaded, copied from the Files API, downloaded, replaced, deleted), bad requests as 400s,
isolation between projects, expiry, and the service methods the code interpreter calls; on
SQLite with blobs on disk or in the database, and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from serverroom.api.containers.service import Containers
from serverroom.app import create_app
from serverroom.context import AppContext, get_principal
from serverroom.errors import InvalidRequestError, NotFoundError
from serverroom.principal import DEFAULT_PROJECT, Principal
from serverroom.storage.tables.containers import ContainerRow
from tests.conftest import fake_settings

T = TypeVar("T")


@pytest.fixture(
    params=["sqlite", "database_blobs", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The app on SQLite (file bytes on disk, or in the database) and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    store = "database" if request.param == "database_blobs" else "directory"
    settings = fake_settings(tmp_path, database_url=url, files_store=store)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _ctx(client: TestClient) -> AppContext:
    ctx: AppContext = client.app.state.context  # type: ignore[attr-defined]
    return ctx


def _call(client: TestClient, work: Callable[[Containers], Awaitable[T]]) -> T:
    """Run ``work`` on the app's ``Containers`` service, in the app's event loop."""

    async def run() -> T:
        return await work(Containers(_ctx(client)))

    return client.portal.call(run)  # type: ignore[union-attr]


def _idle_since(client: TestClient, container_id: str, seconds: int) -> None:
    """Make the container's last activity ``seconds`` ago."""

    async def set_back() -> None:
        async with _ctx(client).db.session() as session:
            await session.execute(
                update(ContainerRow)
                .where(ContainerRow.id == container_id)
                .values(last_active_at=int(time.time()) - seconds)
            )

    client.portal.call(set_back)  # type: ignore[union-attr]


def _upload(sdk: openai.OpenAI, name: str, data: bytes) -> str:
    return sdk.files.create(file=(name, data), purpose="user_data").id


def test_containers_are_created_listed_retrieved_and_deleted(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    plain = sdk.containers.create(name="plain")
    assert plain.id.startswith("cntr_") and plain.object == "container"
    assert plain.status == "running" and plain.memory_limit == "1g"
    assert plain.expires_after is not None and plain.expires_after.minutes == 20
    assert plain.expires_after.anchor == "last_active_at"
    assert plain.last_active_at == plain.created_at
    big = sdk.containers.create(
        name="big", memory_limit="4g", expires_after={"anchor": "last_active_at", "minutes": 5}
    )
    assert big.memory_limit == "4g" and big.expires_after and big.expires_after.minutes == 5
    assert [c.id for c in sdk.containers.list()] == [big.id, plain.id]  # newest first
    assert [c.id for c in sdk.containers.list(order="asc", limit=1).data] == [plain.id]
    page = sdk.containers.list(limit=1, after=big.id)
    assert [c.id for c in page.data] == [plain.id] and not page.has_more
    assert [c.id for c in sdk.containers.list(name="big")] == [big.id]
    assert sdk.containers.retrieve(plain.id).model_dump() == plain.model_dump()
    deleted = client.delete(f"/v1/containers/{plain.id}", headers={"authorization": "Bearer x"})
    assert deleted.json() == {"id": plain.id, "object": "container.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        sdk.containers.retrieve(plain.id)
    with pytest.raises(openai.NotFoundError):
        sdk.containers.delete(plain.id)
    assert [c.id for c in sdk.containers.list()] == [big.id]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}}, None),
        ({"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}}, None),
        ({"name": "x", "memory_limit": "2g"}, "memory_limit"),
        ({"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": ["a"]}}, None),
        ({"name": "x", "skills": [{"type": "skill_reference", "skill_id": "s"}]}, "skills"),
        ({"name": "x", "file_ids": ["file-nope"]}, "id"),
    ],
)
def test_bad_containers_are_refused_in_the_platforms_envelope(
    sdk: openai.OpenAI, body: dict[str, Any], param: str | None
) -> None:
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as caught:
        sdk.post("/containers", body=body, cast_to=object)
    error = caught.value.body
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert sdk.containers.list().data == []  # nothing was made


def test_files_are_uploaded_copied_listed_downloaded_replaced_and_deleted(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    csv = _upload(sdk, "data.csv", b"a,b\n1,2\n")
    box = sdk.containers.create(name="box", file_ids=[csv])
    (copied,) = sdk.containers.files.list(box.id).data
    assert copied.path == "/mnt/data/data.csv" and copied.source == "user" and copied.bytes == 8
    uploaded = sdk.containers.files.create(box.id, file=("a.txt", b"hello"))
    assert uploaded.id.startswith("cfile_") and uploaded.object == "container.file"
    assert (uploaded.path, uploaded.bytes, uploaded.container_id) == ("/mnt/data/a.txt", 5, box.id)
    notes = sdk.containers.files.create(box.id, file_id=_upload(sdk, "notes.md", b"# hi"))
    assert notes.path == "/mnt/data/notes.md"
    listed = sdk.containers.files.list(box.id)
    assert [f.id for f in listed] == [notes.id, uploaded.id, copied.id]
    got = sdk.containers.files.retrieve(uploaded.id, container_id=box.id)
    assert got.model_dump() == uploaded.model_dump()
    content = sdk.containers.files.content.retrieve(uploaded.id, container_id=box.id)
    assert content.read() == b"hello"
    again = sdk.containers.files.create(box.id, file=("dir/a.txt", b"bye"))  # its name only
    assert again.path == "/mnt/data/a.txt" and again.id != uploaded.id
    with pytest.raises(openai.NotFoundError):  # replaced
        sdk.containers.files.retrieve(uploaded.id, container_id=box.id)
    assert sdk.containers.files.content.retrieve(again.id, container_id=box.id).read() == b"bye"
    deleted = client.delete(
        f"/v1/containers/{box.id}/files/{notes.id}", headers={"authorization": "Bearer x"}
    )
    assert deleted.json() == {"id": notes.id, "object": "container.file.deleted", "deleted": True}
    assert [f.id for f in sdk.containers.files.list(box.id, order="asc")] == [copied.id, again.id]
    sdk.files.delete(csv)  # the copy is the container's own
    assert sdk.containers.files.content.retrieve(copied.id, container_id=box.id).read() == (
        b"a,b\n1,2\n"
    )


def test_bad_file_requests(client: TestClient, sdk: openai.OpenAI) -> None:
    box = sdk.containers.create(name="box")
    with pytest.raises(openai.BadRequestError) as missing:
        sdk.post(f"/containers/{box.id}/files", body={}, cast_to=object)
    assert missing.value.code == "missing_required_parameter"
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.create(box.id, file_id="file-nope")
    with pytest.raises(openai.BadRequestError):
        sdk.containers.files.create(box.id, file=("..", b"x"))
    raw = client.post(
        f"/v1/containers/{box.id}/files",
        content=b"not json",
        headers={"authorization": "Bearer x", "content-type": "text/plain"},
    )
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "file"


def test_an_upload_over_the_file_limit_is_refused(tmp_path: Path) -> None:
    with TestClient(create_app(fake_settings(tmp_path, max_file_bytes=4))) as small:
        sdk = openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=small, max_retries=0
        )
        box = sdk.containers.create(name="box")
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.containers.files.create(box.id, file=("big.bin", b"12345"))
        assert caught.value.status_code == 413
        assert sdk.containers.files.create(box.id, file=("ok.bin", b"1234")).bytes == 4
        assert [f.path for f in sdk.containers.files.list(box.id)] == ["/mnt/data/ok.bin"]


def test_unknown_ids_and_other_projects_containers_are_not_found(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    box = sdk.containers.create(name="mine")
    made = sdk.containers.files.create(box.id, file=("a.txt", b"x"))
    with pytest.raises(openai.NotFoundError):
        sdk.containers.retrieve("cntr_nope")
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.list("cntr_nope")
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.retrieve("cfile_nope", container_id=box.id)
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.content.retrieve("cfile_nope", container_id=box.id)
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.delete("cfile_nope", container_id=box.id)
    app = client.app
    app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        assert sdk.containers.list().data == []
        with pytest.raises(openai.NotFoundError):
            sdk.containers.retrieve(box.id)
        with pytest.raises(openai.NotFoundError):
            sdk.containers.files.create(box.id, file=("b.txt", b"y"))
        with pytest.raises(openai.NotFoundError):
            sdk.containers.files.content.retrieve(made.id, container_id=box.id)
        with pytest.raises(openai.NotFoundError):
            sdk.containers.delete(box.id)
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError):
        _call(client, lambda s: s.usable("proj_other", box.id))
    assert sdk.containers.retrieve(box.id).status == "running"


def test_file_use_is_activity_and_retrieving_is_not(client: TestClient, sdk: openai.OpenAI) -> None:
    box = sdk.containers.create(name="box")
    _idle_since(client, box.id, 300)
    idle = sdk.containers.retrieve(box.id)
    assert idle.last_active_at is not None and idle.last_active_at <= time.time() - 299
    sdk.containers.files.list(box.id)
    used = sdk.containers.retrieve(box.id).last_active_at
    assert used is not None and used >= time.time() - 5


def test_an_expired_container_says_so_and_its_files_go(
    client: TestClient, sdk: openai.OpenAI
) -> None:
    box = sdk.containers.create(
        name="short", expires_after={"anchor": "last_active_at", "minutes": 1}
    )
    made = sdk.containers.files.create(box.id, file=("a.txt", b"x"))
    _idle_since(client, box.id, 61)
    assert sdk.containers.retrieve(box.id).status == "expired"
    assert [c.status for c in sdk.containers.list()] == ["expired"]
    for use in (
        lambda: sdk.containers.files.list(box.id),
        lambda: sdk.containers.files.create(box.id, file=("b.txt", b"y")),
        lambda: sdk.containers.files.content.retrieve(made.id, container_id=box.id),
    ):
        with pytest.raises(openai.BadRequestError) as expired:
            use()
        assert expired.value.code == "container_expired"
    with pytest.raises(InvalidRequestError):
        _call(client, lambda s: s.usable(DEFAULT_PROJECT, box.id))
    assert sdk.containers.retrieve(box.id).status == "expired"  # using it did not revive it
    sdk.containers.create(name="next")  # making a container discards expired ones' files
    assert _call(client, lambda s: s.repo.all_files(box.id)) == []
    sdk.containers.delete(box.id)


def test_the_code_interpreters_service_methods(client: TestClient, sdk: openai.OpenAI) -> None:
    csv = _upload(sdk, "data.csv", b"x\n1\n")
    auto = _call(client, lambda s: s.create_auto(DEFAULT_PROJECT, [csv]))
    assert auto["name"] == "auto" and auto["status"] == "running"
    assert sdk.containers.retrieve(auto["id"]).model_dump(exclude_none=True) == auto
    cid = auto["id"]
    assert _call(client, lambda s: s.snapshot(DEFAULT_PROJECT, cid)) == {"data.csv": b"x\n1\n"}
    written = {"data.csv": b"x\n2\n", "out.txt": b"done", "sub/x.txt": b"deep"}
    saved = _call(client, lambda s: s.save_outputs(DEFAULT_PROJECT, cid, written))
    assert [(f["path"], f["source"], f["bytes"]) for f in saved] == [
        ("/mnt/data/data.csv", "assistant", 4),
        ("/mnt/data/out.txt", "assistant", 4),
        ("/mnt/data/sub/x.txt", "assistant", 4),
    ]
    assert {f["object"] for f in saved} == {"container.file"}
    assert sdk.containers.files.retrieve(saved[2]["id"], container_id=cid).model_dump() == saved[2]
    assert _call(client, lambda s: s.snapshot(DEFAULT_PROJECT, cid)) == written
    assert len(sdk.containers.files.list(cid).data) == 3  # the old data.csv was replaced
    with pytest.raises(InvalidRequestError):
        _call(client, lambda s: s.save_outputs(DEFAULT_PROJECT, cid, {"../x": b""}))
    _idle_since(client, cid, 300)
    usable = _call(client, lambda s: s.usable(DEFAULT_PROJECT, cid))
    assert usable["id"] == cid and usable["last_active_at"] >= time.time() - 5
    with pytest.raises(NotFoundError):
        _call(client, lambda s: s.usable(DEFAULT_PROJECT, "cntr_nope"))
    with pytest.raises(NotFoundError):
        _call(client, lambda s: s.create_auto(DEFAULT_PROJECT, ["file-nope"]))
    _idle_since(client, cid, 21 * 60)
    for expired in (
        lambda s: s.usable(DEFAULT_PROJECT, cid),
        lambda s: s.snapshot(DEFAULT_PROJECT, cid),
        lambda s: s.save_outputs(DEFAULT_PROJECT, cid, {"y.txt": b"y"}),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            _call(client, expired)
        assert caught.value.code == "container_expired"
