"""The Vector Stores API through the official SDK, in-process with the real embedding model:
ingestion of text, Markdown, HTML, JSON and PDF files, search, filters, attributes, content,
file batches, detaching, a broken file, and isolation between projects."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.context import get_principal
from serverroom.principal import Principal
from tests.conftest import fake_settings

DOCS = {
    "volcanoes.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava and ash.",
    "bread.txt": "To bake bread, knead flour, water, yeast and salt, let it rise, then bake.",
    "tides.html": "<html><head><style>p{}</style></head><body><p>The moon's gravity pulls the"
    " oceans and makes the tides rise and fall twice a day.</p><script>x()</script></body></html>",
    "planets.json": '{"planet": "Jupiter", "fact": "Jupiter is the largest planet of the solar'
    ' system, a gas giant with a great red spot."}',
}


def pdf_with(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` (built by hand: no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The app on SQLite, and on PostgreSQL (the same queries, claims and bytes columns)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    with TestClient(create_app(fake_settings(tmp_path, database_url=url))) as test_client:
        yield test_client


def _upload(sdk: openai.OpenAI, name: str, data: bytes) -> str:
    return sdk.files.create(file=(name, data), purpose="assistants").id


@pytest.fixture
def store(sdk: openai.OpenAI) -> tuple[str, dict[str, str]]:
    ids = {name: _upload(sdk, name, text.encode()) for name, text in DOCS.items()}
    ids["sundial.pdf"] = _upload(
        sdk, "sundial.pdf", pdf_with("A sundial tells the time by the sun")
    )
    vs = sdk.vector_stores.create(name="facts", metadata={"team": "science"})
    batch = sdk.vector_stores.file_batches.create_and_poll(
        vector_store_id=vs.id,
        files=[
            {"file_id": file_id, "attributes": {"kind": name.rsplit(".", 1)[1], "size": len(name)}}
            for name, file_id in ids.items()
        ],
    )
    assert batch.status == "completed" and batch.file_counts.completed == len(ids), batch
    return vs.id, ids


def test_a_store_is_made_from_files_and_searched(
    sdk: openai.OpenAI, store: tuple[str, dict[str, str]]
) -> None:
    vs_id, ids = store
    vs = sdk.vector_stores.retrieve(vs_id)
    assert vs.status == "completed" and vs.file_counts.total == 5 and vs.usage_bytes > 0
    assert vs.metadata == {"team": "science"} and vs.name == "facts"
    for query, name in [
        ("what makes the ocean tides", "tides.html"),
        ("how do I bake bread with yeast", "bread.txt"),
        ("largest planet gas giant", "planets.json"),
        ("lava erupting from magma", "volcanoes.md"),
        ("telling time with the sun", "sundial.pdf"),
    ]:
        page = sdk.vector_stores.search(vs_id, query=query, max_num_results=3)
        assert page.data[0].filename == name, (query, [r.filename for r in page.data])
        assert page.data[0].file_id == ids[name] and 0 < page.data[0].score <= 1
        assert page.data[0].content[0].type == "text"
    tides = sdk.vector_stores.search(vs_id, query="tides").data[0].content[0].text
    assert "moon's gravity" in tides and "x()" not in tides and "{}" not in tides


def test_filters_attributes_and_thresholds(
    sdk: openai.OpenAI, store: tuple[str, dict[str, str]]
) -> None:
    vs_id, ids = store
    only_txt = sdk.vector_stores.search(
        vs_id, query="tides", filters={"type": "eq", "key": "kind", "value": "txt"}
    )
    assert [r.filename for r in only_txt.data] == ["bread.txt"]
    compound = sdk.vector_stores.search(
        vs_id,
        query="planet",
        filters={
            "type": "and",
            "filters": [
                {"type": "in", "key": "kind", "value": ["json", "md"]},
                {"type": "gte", "key": "size", "value": 12},
            ],
        },
    )
    assert {r.filename for r in compound.data} == {"planets.json", "volcanoes.md"}
    strict = sdk.vector_stores.search(
        vs_id, query="bread", ranking_options={"score_threshold": 0.99}
    )
    assert all(r.score >= 0.99 for r in strict.data)
    updated = sdk.vector_stores.files.update(
        file_id=ids["bread.txt"], vector_store_id=vs_id, attributes={"kind": "recipe"}
    )
    assert updated.attributes == {"kind": "recipe"}
    recipes = sdk.vector_stores.search(
        vs_id, query="bread", filters={"type": "eq", "key": "kind", "value": "recipe"}
    )
    assert [r.filename for r in recipes.data] == ["bread.txt"]
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.vector_stores.search(vs_id, query="x", filters={"type": "near", "key": "k", "value": 1})
    assert bad.value.body["param"] == "filters.type"  # type: ignore[index]


def test_content_listing_and_detaching(
    sdk: openai.OpenAI, store: tuple[str, dict[str, str]]
) -> None:
    vs_id, ids = store
    content = sdk.vector_stores.files.content(file_id=ids["bread.txt"], vector_store_id=vs_id)
    assert "knead flour" in "".join(part.text or "" for part in content)
    listed = sdk.vector_stores.files.list(vector_store_id=vs_id, limit=2)
    assert len(listed.data) == 2 and listed.has_more
    assert len(list(sdk.vector_stores.files.list(vector_store_id=vs_id, limit=2))) == 5
    deleted = sdk.vector_stores.files.delete(file_id=ids["bread.txt"], vector_store_id=vs_id)
    assert deleted.deleted
    hits = sdk.vector_stores.search(vs_id, query="bake bread with yeast", max_num_results=5)
    assert "bread.txt" not in [r.filename for r in hits.data]
    sdk.files.delete(ids["tides.html"])  # deleting the file takes it out of the store too
    assert sdk.vector_stores.retrieve(vs_id).file_counts.total == 3
    assert sdk.vector_stores.delete(vs_id).deleted
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.retrieve(vs_id)


def test_a_broken_file_fails_alone(sdk: openai.OpenAI) -> None:
    good = _upload(sdk, "ok.txt", b"Otters hold hands while they sleep.")
    binary = _upload(sdk, "blob.bin", bytes(range(256)) * 4)
    broken_pdf = _upload(sdk, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    vs = sdk.vector_stores.create(name="mixed")
    results = {
        f: sdk.vector_stores.files.create_and_poll(file_id=f, vector_store_id=vs.id)
        for f in (good, binary, broken_pdf)
    }
    assert results[good].status == "completed" and results[good].last_error is None
    for bad in (binary, broken_pdf):
        assert results[bad].status == "failed"
        assert results[bad].last_error is not None and results[bad].last_error.message
    assert results[binary].last_error.code == "unsupported_file"  # type: ignore[union-attr]
    counts = sdk.vector_stores.retrieve(vs.id).file_counts
    assert (counts.completed, counts.failed) == (1, 2)
    hits = sdk.vector_stores.search(vs.id, query="otters sleeping")
    assert [r.file_id for r in hits.data] == [good]


def test_upload_and_poll_and_static_chunking(sdk: openai.OpenAI) -> None:
    vs = sdk.vector_stores.create(name="long")
    words = " ".join(f"word{i}" for i in range(3000))
    attached = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id,
        file=("long.txt", words.encode()),
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50},
        },
    )
    assert attached.status == "completed"
    assert attached.chunking_strategy.type == "static"  # type: ignore[union-attr]
    parts = list(sdk.vector_stores.files.content(file_id=attached.id, vector_store_id=vs.id))
    assert len(parts) > 10
    with pytest.raises(openai.BadRequestError):
        sdk.vector_stores.files.create(
            vector_store_id=vs.id,
            file_id=attached.id,
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 10},
            },
        )


def test_another_project_sees_nothing(
    client: TestClient, sdk: openai.OpenAI, store: tuple[str, dict[str, str]]
) -> None:
    vs_id, ids = store
    app = client.app
    app.dependency_overrides[get_principal] = lambda: Principal(project_id="proj_other")  # type: ignore[attr-defined]
    try:
        with pytest.raises(openai.NotFoundError):
            sdk.vector_stores.retrieve(vs_id)
        with pytest.raises(openai.NotFoundError):
            sdk.vector_stores.search(vs_id, query="bread")
        assert sdk.vector_stores.list().data == []
        own = sdk.vector_stores.create(name="mine")
        with pytest.raises(openai.NotFoundError):  # nor attach its files to a store of its own
            sdk.vector_stores.files.create(vector_store_id=own.id, file_id=ids["bread.txt"])
        assert sdk.vector_stores.search(own.id, query="bread").data == []
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]


def test_an_expired_store_says_so_and_is_not_searched(
    sdk: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serverroom.api.vector_stores import service

    policy = {"anchor": "last_active_at", "days": 1}
    vs = sdk.vector_stores.create(name="short", expires_after=policy)  # type: ignore[arg-type]
    assert vs.expires_at == vs.last_active_at + 86_400 and vs.status == "completed"
    later = time.time() + 2 * 86_400

    class Later:
        @staticmethod
        def time() -> float:
            return later

    monkeypatch.setattr(service, "time", Later)
    assert sdk.vector_stores.retrieve(vs.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as expired:
        sdk.vector_stores.search(vs.id, query="anything")
    assert expired.value.code == "vector_store_expired"


def test_lists_page_forwards_and_back(sdk: openai.OpenAI) -> None:
    made = [sdk.vector_stores.create(name=f"s{i}").id for i in range(5)]  # oldest first
    newest = list(reversed(made))
    first = sdk.vector_stores.list(limit=2)
    assert [s.id for s in first.data] == newest[:2] and first.has_more
    second = sdk.vector_stores.list(limit=2, after=first.data[-1].id)
    assert [s.id for s in second.data] == newest[2:4]
    back = sdk.vector_stores.list(limit=2, before=second.data[0].id)
    assert [s.id for s in back.data] == newest[:2]
    oldest = sdk.vector_stores.list(limit=3, order="asc", before=made[4])
    assert [s.id for s in oldest.data] == made[1:4]
    files = [_upload(sdk, f"f{i}.txt", f"text {i}".encode()) for i in range(4)]
    batch = sdk.vector_stores.file_batches.create_and_poll(vector_store_id=made[0], file_ids=files)
    assert batch.file_counts.completed == 4
    page = sdk.vector_stores.files.list(vector_store_id=made[0], limit=2, order="asc")
    rest = sdk.vector_stores.files.list(
        vector_store_id=made[0], limit=2, order="asc", after=page.data[-1].id
    )
    assert [f.id for f in page.data + rest.data] == files
    again = sdk.vector_stores.files.list(
        vector_store_id=made[0], limit=2, order="asc", before=rest.data[0].id
    )
    assert [f.id for f in again.data] == files[:2]
    done = sdk.vector_stores.file_batches.list_files(
        vector_store_id=made[0], batch_id=batch.id, filter="completed", limit=10
    )
    assert len(done.data) == 4


def test_the_worker_outlives_a_failed_write(
    client: TestClient, sdk: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = client.app.state.context.ingestor  # type: ignore[attr-defined]
    real = ingestor.repo.finish
    failures: list[str] = []

    async def refuse_once(row: Any, *args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(row.file_id)
            raise OSError("the database went away")
        return bool(await real(row, *args, **kwargs))

    monkeypatch.setattr(ingestor.repo, "finish", refuse_once)
    replicas = client.app.state.context.settings.replicas  # type: ignore[attr-defined]
    monkeypatch.setattr(replicas, "lease_seconds", 0.3)  # the unfinished file is retried soon
    vs = sdk.vector_stores.create(name="retry")
    first = _upload(sdk, "a.txt", b"Penguins cannot fly but swim well.")
    done = sdk.vector_stores.files.create_and_poll(file_id=first, vector_store_id=vs.id)
    assert failures == [first] and done.status == "completed"
    second = _upload(sdk, "b.txt", b"Owls hunt at night.")
    assert sdk.vector_stores.files.create_and_poll(
        file_id=second, vector_store_id=vs.id
    ).status == ("completed")
