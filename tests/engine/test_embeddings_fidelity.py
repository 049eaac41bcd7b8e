"""The numpy BERT engine matches sentence-transformers (reference vectors in tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from serverroom.catalog import Catalog
from serverroom.engine.embeddings.registry import default_embedding_factory

FIXTURE = Path(__file__).parents[1] / "fixtures" / "minilm_reference.json"


def test_vectors_match_sentence_transformers() -> None:
    reference = json.loads(FIXTURE.read_text())
    engine = default_embedding_factory(Catalog.load().resolve("all-minilm-l6-v2"))
    ours = engine.embed(reference["sentences"])
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    cosines = (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    print(f"fidelity: min cosine {cosines.min():.7f}, max |diff| {np.abs(ours - theirs).max():.2e}")
    assert cosines.min() >= 0.99
    # Batching and padding must not change a vector.
    alone = engine.embed([reference["sentences"][0]])[0]
    np.testing.assert_allclose(alone, ours[0], atol=1e-5)
