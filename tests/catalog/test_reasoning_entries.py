"""A catalog's reasoning entries: how a model thinks (native or scaffolded) and its think tags,
checked when the catalog is read; a native thinker through the API keeps its block out of the
answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from serverroom.catalog import Catalog, CatalogError
from tests.conftest import fake_settings

NATIVE = """
[[model]]
id = "thinker"
backend = "fake"
reasoning = true
thinking = "native"
think_tags = ["<reasoning>", "</reasoning>"]
"""


def test_the_built_in_o3_is_a_scaffolded_reasoning_model() -> None:
    entry = Catalog.load().resolve("o3")
    assert entry.reasoning and entry.thinking == "scaffold"
    assert entry.think_tags == ("<think>", "</think>")
    assert not Catalog.load().resolve("gpt-4o-mini").reasoning


def test_native_thinkers_and_their_tags(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(NATIVE)
    entry = Catalog.load(path).resolve("thinker")
    assert entry.thinking == "native" and entry.think_tags == ("<reasoning>", "</reasoning>")


@pytest.mark.parametrize(
    ("line", "word"),
    [('thinking = "deep"', "thinking"), ('think_tags = ["<t>"]', "think_tags")],
)
def test_bad_thinking_settings_are_refused(tmp_path: Path, line: str, word: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(f'[[model]]\nid = "m"\nbackend = "fake"\n{line}\n')
    with pytest.raises(CatalogError, match=word):
        Catalog.load(path)


def test_a_native_thinker_answers_with_its_block_apart(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(NATIVE)
    with TestClient(create_app(fake_settings(tmp_path, catalog_file=path))) as client:
        body = {"model": "thinker", "input": "Hi", "reasoning": {"summary": "auto"}}
        reply = client.post("/v1/responses", json=body).json()
    reasoning, message = reply["output"]
    assert reasoning["summary"][0]["text"]
    answer = message["content"][0]["text"]
    assert answer and "<reasoning>" not in answer and "</reasoning>" not in answer
