"""Embeddings through the official SDK, on the real all-MiniLM-L6-v2 model (in-process)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.catalog import ModelEntry
from serverroom.engine.embeddings import EmbeddingEngine
from tests.conftest import fake_settings


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    data_dir: Path = tmp_path_factory.mktemp("emb")
    with TestClient(create_app(fake_settings(data_dir))) as client:
        yield openai.OpenAI(
            api_key="sk-test", base_url="http://testserver/v1", http_client=client, max_retries=0
        )


def vec(data: list[float]) -> np.ndarray:
    return np.asarray(data, dtype=np.float32)


def test_default_base64_matches_float(emb: openai.OpenAI) -> None:
    texts = ["The cat sits on the mat.", "A feline rests on a rug."]
    default = emb.embeddings.create(model="text-embedding-3-small", input=texts)
    floats = emb.embeddings.create(model="all-minilm-l6-v2", input=texts, encoding_format="float")
    assert default.model == "text-embedding-3-small"
    assert [d.index for d in default.data] == [0, 1]
    for a, b in zip(default.data, floats.data, strict=True):
        assert len(a.embedding) == 384
        np.testing.assert_allclose(vec(a.embedding), vec(b.embedding), atol=1e-6)
        assert abs(np.linalg.norm(vec(b.embedding)) - 1) < 1e-4
    assert default.usage.prompt_tokens == default.usage.total_tokens > 0


def test_base64_wire_format_is_little_endian_float32(emb: openai.OpenAI) -> None:
    raw = emb.embeddings.with_raw_response.create(
        model="all-minilm-l6-v2", input="hello", encoding_format="base64"
    )
    item = raw.http_response.json()["data"][0]
    decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    assert decoded.shape == (384,)
    assert item["object"] == "embedding"


def test_token_arrays_equal_text(emb: openai.OpenAI) -> None:
    text = emb.embeddings.create(
        model="all-minilm-l6-v2", input="hello world", encoding_format="float"
    )
    tokens = [7592, 2088]  # "hello world" in the model's WordPiece vocabulary
    one = emb.embeddings.create(model="all-minilm-l6-v2", input=tokens, encoding_format="float")
    many = emb.embeddings.create(
        model="all-minilm-l6-v2", input=[tokens, tokens], encoding_format="float"
    )
    np.testing.assert_allclose(vec(one.data[0].embedding), vec(text.data[0].embedding), atol=1e-5)
    assert len(many.data) == 2
    assert one.usage.prompt_tokens == 2


def test_dimensions_truncate_and_renormalize(emb: openai.OpenAI) -> None:
    full = emb.embeddings.create(
        model="all-minilm-l6-v2", input="shorter vectors", encoding_format="float"
    )
    short = emb.embeddings.create(
        model="all-minilm-l6-v2", input="shorter vectors", encoding_format="float", dimensions=64
    )
    v = vec(short.data[0].embedding)
    assert v.shape == (64,)
    assert abs(np.linalg.norm(v) - 1) < 1e-4
    head = vec(full.data[0].embedding)[:64]
    np.testing.assert_allclose(v, head / np.linalg.norm(head), atol=1e-5)
    with pytest.raises(openai.BadRequestError) as err:
        emb.embeddings.create(model="all-minilm-l6-v2", input="x", dimensions=385)
    assert err.value.body["param"] == "dimensions"  # type: ignore[index]


def test_paraphrases_score_above_unrelated(emb: openai.OpenAI) -> None:
    texts = [
        "How do I reset my password?",
        "What are the steps to change my login password?",
        "The weather in Lisbon is sunny today.",
        "A man is playing a guitar on stage.",
        "Someone performs music with a guitar at a concert.",
    ]
    data = emb.embeddings.create(model="all-minilm-l6-v2", input=texts).data
    v = np.stack([vec(d.embedding) for d in data])
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2] + 0.3
    assert sims[3, 4] > sims[3, 2] + 0.3
    assert min(sims[0, 1], sims[3, 4]) > max(sims[0, 2], sims[1, 3], sims[2, 4])


def test_too_long_and_empty_inputs_are_400(emb: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        emb.embeddings.create(model="all-minilm-l6-v2", input="word " * 300)
    assert err.value.body["param"] == "input"  # type: ignore[index]
    assert err.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        emb.embeddings.create(model="all-minilm-l6-v2", input=[])
    with pytest.raises(openai.BadRequestError):
        emb.embeddings.create(model="all-minilm-l6-v2", input=[""])
    with pytest.raises(openai.BadRequestError):
        emb.embeddings.create(model="all-minilm-l6-v2", input=[[999999]])


def test_models_and_wrong_kind(emb: openai.OpenAI) -> None:
    ids = {m.id for m in emb.models.list()}
    assert {"all-minilm-l6-v2", "text-embedding-3-small"} <= ids
    with pytest.raises(openai.BadRequestError):
        emb.embeddings.create(model="gpt-4.1-mini", input="hi")
    with pytest.raises(openai.NotFoundError):
        emb.embeddings.create(model="no-such-model", input="hi")


def test_many_inputs_keep_order(emb: openai.OpenAI) -> None:
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(150)]
    many = emb.embeddings.create(model="all-minilm-l6-v2", input=texts, encoding_format="float")
    assert [d.index for d in many.data] == list(range(150))
    single = emb.embeddings.create(
        model="all-minilm-l6-v2", input=texts[137], encoding_format="float"
    )
    np.testing.assert_allclose(
        vec(many.data[137].embedding), vec(single.data[0].embedding), atol=1e-5
    )


def test_the_app_factory_builds_the_embedding_registry(tmp_path: Path) -> None:
    def no_weights(entry: ModelEntry) -> EmbeddingEngine:
        raise RuntimeError(f"no weights for {entry.id}")

    app = create_app(fake_settings(tmp_path), embedding_factory=no_weights)
    with TestClient(app) as client:
        reply = client.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "hi"})
    assert reply.status_code == 503
    assert "no weights for all-minilm-l6-v2" in reply.json()["error"]["message"]


def test_the_lifespan_closes_the_embedding_engines(tmp_path: Path) -> None:
    app = create_app(fake_settings(tmp_path))
    with TestClient(app) as client:
        reply = client.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "hi"})
        assert reply.status_code == 200
        registry = app.state.context.embeddings
        assert registry._engines  # loaded by the request
    assert not registry._engines and not registry._loading
