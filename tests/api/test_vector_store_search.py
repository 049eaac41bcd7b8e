"""The search index and filters of vector stores, on their own: BM25 and vector ranking, an
index extended with new chunks ranking exactly as one built whole, and the filter rules."""

from __future__ import annotations

import numpy as np
import pytest

from serverroom.api.vector_stores.search import Index, check_filter, matches
from serverroom.errors import InvalidRequestError

TEXTS = [
    "the moon pulls the ocean and makes tides",
    "bread needs flour water yeast and salt",
    "volcanoes erupt lava and ash",
    "tides rise and fall twice a day",
    "knead the dough then bake the bread",
]


def _rows(start: int = 0) -> list[tuple[int, str, str, bytes]]:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(TEXTS), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [(i + 1, f"file{i % 2}", t, vectors[i].tobytes()) for i, t in enumerate(TEXTS)][start:]


def test_keyword_and_vector_ranking() -> None:
    index = Index.build(_rows())
    allowed = np.ones(len(TEXTS), dtype=bool)
    keyword = index.rank("tides", None, allowed, "keyword")
    assert {int(i) for i in np.argsort(-keyword)[:2]} == {0, 3} and keyword[1] == 0
    vector = index.rank("", index.vectors[2], allowed, "vector")
    assert int(np.argmax(vector)) == 2 and vector[2] == pytest.approx(1.0)
    only_odd = np.array([i % 2 == 1 for i in range(len(TEXTS))])
    hybrid = index.rank("bread", index.vectors[4], only_odd, "hybrid")
    assert hybrid[0] == -1 and int(np.argmax(hybrid)) in (1, 3)
    assert float(hybrid.max()) <= 1.0


def test_an_extended_index_ranks_as_one_built_whole() -> None:
    whole = Index.build(_rows())
    grown = Index.build(_rows()[:2]).extended(_rows(2))
    allowed = np.ones(len(TEXTS), dtype=bool)
    for query, vector in [("bread tides", whole.vectors[0]), ("ash", whole.vectors[3])]:
        assert np.allclose(whole.rank(query, vector, allowed), grown.rank(query, vector, allowed))
    assert grown.chunk_ids == whole.chunk_ids and grown.file_ids == whole.file_ids


def test_filters() -> None:
    attrs = {"kind": "txt", "size": 12, "draft": False}
    assert matches({"type": "eq", "key": "kind", "value": "txt"}, attrs)
    assert matches({"type": "gte", "key": "size", "value": 12}, attrs)
    assert not matches({"type": "gt", "key": "kind", "value": 3}, attrs)  # string vs number
    assert not matches({"type": "lt", "key": "draft", "value": 1}, attrs)  # bool vs number
    assert matches({"type": "nin", "key": "kind", "value": ["pdf"]}, attrs)
    assert matches(
        {
            "type": "or",
            "filters": [
                {"type": "eq", "key": "kind", "value": "pdf"},
                {"type": "ne", "key": "missing", "value": 1},
            ],
        },
        attrs,
    )
    with pytest.raises(InvalidRequestError) as bad:
        wrong = {"type": "in", "key": "k", "value": 3}  # "in" takes a list
        check_filter({"type": "and", "filters": [wrong]}, "filters")
    assert bad.value.param == "filters.filters[0].value"
