"""Images through the llama.cpp engine (``media.py`` and the scheduler's image spans), on the
tiny test VLM (random weights, a real CLIP projector): an image becomes its 16 placeholders
where it stands in the message, the scheduler decodes its embeddings into the KV cache and
generation goes on after it, a repeated image is a cached prefix while another image is not,
and bytes that are not an image are the platform's 400. Answers are noise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from serverroom.engine.base import (
    ChatMessage,
    GenerationRequest,
    GenerationStats,
    ImageInput,
    PromptProcessed,
    SampledToken,
    SamplingParams,
)
from serverroom.engine.llamacpp import LlamaCppEngine
from serverroom.engine.llamacpp.media import FILLER, KEEP, is_image_start
from serverroom.engine.llamacpp.native import NativeChoice
from serverroom.errors import InvalidRequestError
from serverroom.settings import EngineSettings
from tests.engine.tiny_vlm import IMAGE_TOKENS, png, write_mmproj, write_text_model


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppEngine]:
    where: Path = tmp_path_factory.mktemp("vlm")
    settings = EngineSettings(slots=2, slot_context=256, batch_size=64, threads=2)
    built = LlamaCppEngine(
        write_text_model(where / "text.gguf"),
        context_length=512,
        settings=settings,
        native=NativeChoice(False, "forced", "test"),
        mmproj=write_mmproj(where / "mmproj.gguf"),
    )
    asyncio.run(built.start())
    yield built
    asyncio.run(built.close())


def _message(text: str, *images: tuple[bytes, int]) -> list[ChatMessage]:
    placed = tuple(ImageInput(data, at) for data, at in images)
    return [ChatMessage(role="user", content=text, images=placed)]


def _run(engine: LlamaCppEngine, prompt: list[int]) -> tuple[int, list[int], GenerationStats]:
    async def go() -> tuple[int, list[int], GenerationStats]:
        cached, tokens = -1, []
        request = GenerationRequest(prompt, SamplingParams(max_tokens=4, temperature=0.0))
        async for event in engine.generate(request):
            if isinstance(event, PromptProcessed):
                cached = event.cached_tokens
            elif isinstance(event, SampledToken):
                tokens.append(event.token)
            else:
                return cached, tokens, event
        raise AssertionError("no GenerationStats")

    return asyncio.run(go())


def test_an_image_is_its_placeholders_where_it_stands(engine: LlamaCppEngine) -> None:
    text = engine.tokenize_chat(_message("the cat"))
    prompt = engine.tokenize_chat(_message("the cat", (png(), 4)))
    starts = [i for i, t in enumerate(prompt) if is_image_start(t)]
    assert len(starts) == 1
    at = starts[0]
    span = prompt[at : at + IMAGE_TOKENS]
    assert span[1:] == [FILLER] * (IMAGE_TOKENS - 1)
    assert len(prompt) >= len(text) + IMAGE_TOKENS
    assert engine.tokenize_chat(_message("the cat", (png(), 4))) == prompt  # same image, same ids
    other = engine.tokenize_chat(_message("the cat", (png(seed=1), 4)))
    assert other[at] != prompt[at] and is_image_start(other[at])


def test_generation_runs_after_an_image(engine: LlamaCppEngine) -> None:
    prompt = engine.tokenize_chat(_message("look: ", (png(seed=2), 6)))
    _, tokens, stats = _run(engine, prompt)
    assert stats.finish_reason in ("stop", "length") and stats.error is None
    assert stats.prompt_tokens == len(prompt) and tokens
    again = _run(engine, prompt)  # the same prompt: its image is in the KV cache
    assert again[0] == len(prompt) - 1
    assert again[1] == tokens  # greedy, and the cached image gives the same logits


def test_a_different_image_is_not_a_cached_prefix(engine: LlamaCppEngine) -> None:
    first = engine.tokenize_chat(_message("a cat", (png(seed=3), 2)))
    second = engine.tokenize_chat(_message("a cat", (png(seed=4), 2)))
    start = next(i for i, t in enumerate(first) if is_image_start(t))
    _run(engine, first)
    cached, _, stats = _run(engine, second)
    assert stats.error is None
    assert cached <= start  # the cache stops where the images differ


def test_two_images_side_by_side(engine: LlamaCppEngine) -> None:
    prompt = engine.tokenize_chat(_message("ab", (png(seed=5), 1), (png(seed=6), 1)))
    assert sum(is_image_start(t) for t in prompt) == 2
    assert prompt.count(FILLER) == 2 * (IMAGE_TOKENS - 1)
    _, tokens, stats = _run(engine, prompt)
    assert stats.error is None and tokens


@pytest.mark.parametrize(
    "data", [b"not a picture", b"RIFF\0\0\0\0WEBPVP8 ", b"\x89PNG\r\n\x1a\n" + b"\0" * 40]
)
def test_bytes_that_are_not_an_image_are_a_400(engine: LlamaCppEngine, data: bytes) -> None:
    with pytest.raises(InvalidRequestError) as caught:  # never handed to audio or video readers
        engine.tokenize_chat(_message("x", (data, 0)))
    assert caught.value.code == "invalid_image_format"


def test_an_image_no_longer_encoded_fails_cleanly(engine: LlamaCppEngine) -> None:
    prompt = engine.tokenize_chat(_message("x", (png(seed=7), 0)))
    for seed in range(100, 100 + KEEP + 1):  # push it out of the kept images
        engine.tokenize_chat(_message("x", (png(seed=seed), 0)))
    import gc

    gc.collect()
    from serverroom.errors import ServiceUnavailableError

    with pytest.raises(ServiceUnavailableError):  # a 503: the SDK retries
        _run(engine, prompt)
