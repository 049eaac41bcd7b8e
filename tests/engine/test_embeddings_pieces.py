"""The BERT engine's bounded work: texts tokenized in pieces give the whole text's tokens,
a ``limit`` stops early, and cutting passes by tokens does not change a vector."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from serverroom.catalog import Catalog
from serverroom.engine.embeddings import bert
from serverroom.engine.embeddings.bert import BertEngine
from serverroom.engine.embeddings.registry import default_embedding_factory


@pytest.fixture(scope="module")
def engine() -> Iterator[BertEngine]:
    made = default_embedding_factory(Catalog.load().resolve("all-minilm-l6-v2"))
    assert isinstance(made, BertEngine)
    yield made


def _whole(engine: BertEngine, text: str) -> list[int]:
    return list(engine._tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize(
    "text",
    [
        "The naïve café's crème brûlée, déjà vu!\n" * 300,
        "中文的句子没有空格。" * 1000,  # each ideograph is a word of its own
        ("word " * 50 + "\t\r\n") * 40,
        "x" * 3000 + " " + "y" * 3000,
        " " * 5000 + "hello" + "\u3000" * 5000,
    ],
)
def test_pieces_give_the_whole_texts_tokens(engine: BertEngine, text: str) -> None:
    assert len(text) > bert.PIECE
    assert engine.tokenize(text) == _whole(engine, text)


def test_only_spaces_and_control_characters_have_no_tokens(engine: BertEngine) -> None:
    blank = "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) * 200
    assert _whole(engine, blank) == [] == engine.tokenize(blank)


def test_a_run_without_spaces_longer_than_a_piece_counts_as_its_pieces(
    engine: BertEngine,
) -> None:
    unknown = engine._tokenizer.token_to_id("[UNK]")
    assert _whole(engine, "x" * 5000) == [unknown]  # WordPiece: a word over 100 characters
    assert engine.tokenize("x" * 5000) == [unknown, unknown]


def test_a_limit_stops_tokenizing_early(engine: BertEngine) -> None:
    ids = engine.tokenize("a." * 1_000_000, limit=254)
    assert 254 < len(ids) <= 254 + bert.PIECE


def test_passes_cut_by_tokens_do_not_change_vectors(engine: BertEngine) -> None:
    long, short = [2023 + i for i in range(254)], [7592, 2088]
    together = engine.embed([long] * 9 + [short] * 40)  # 2 passes of long ones, 2 of short
    alone = engine.embed([long, short])
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    np.testing.assert_allclose(together[-1], alone[1], atol=1e-5)
    assert list(bert._passes(list(range(3)), [256, 256, 256])) == [[0, 1, 2]]
    assert len(list(bert._passes(list(range(9)), [256] * 9))) == 2
