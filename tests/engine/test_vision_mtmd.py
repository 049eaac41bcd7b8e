"""llama.cpp's multimodal library (libmtmd, built with llama-cpp-python) on a tiny test VLM
(``tiny_vlm``: random weights, a real CLIP ``mlp`` projector): the projector loads against
the text model, an image in a prompt becomes 16 image tokens between text chunks, its encoding
has the text model's width, and the chunks evaluate into a llama context. This is the loading
and inference path a catalog model with an ``mmproj`` will take; answers are noise."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.engine.tiny_vlm import IMAGE_SIZE, IMAGE_TOKENS, N_EMBD, write_mmproj, write_text_model


@pytest.fixture(scope="module")
def vlm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any, Any]]:
    import llama_cpp as L
    from llama_cpp import mtmd_cpp as M

    where = tmp_path_factory.mktemp("vlm")
    text = write_text_model(where / "text.gguf")
    mmproj = write_mmproj(where / "mmproj.gguf")
    L.llama_backend_init()
    model = L.llama_model_load_from_file(str(text).encode(), L.llama_model_default_params())
    assert model, "the tiny text model did not load"
    params = M.mtmd_context_params_default()
    params.use_gpu = False
    params.n_threads = 2
    params.warmup = False
    params.print_timings = False
    ctx = M.mtmd_init_from_file(str(mmproj).encode(), model, params)
    assert ctx, "libmtmd refused the tiny projector"
    cparams = L.llama_context_default_params()
    cparams.n_ctx = 256
    cparams.n_batch = 64
    cparams.n_ubatch = 64  # an image's tokens go in one non-causal batch
    lctx = L.llama_init_from_model(model, cparams)
    assert lctx
    yield L, M, (model, lctx), ctx
    M.mtmd_free(ctx)
    L.llama_free(lctx)
    L.llama_model_free(model)


def _chunks(M: Any, ctx: Any, prompt: str) -> Any:
    pixels = (np.arange(IMAGE_SIZE * IMAGE_SIZE * 3) % 251).astype(np.uint8)
    data = (ctypes.c_uint8 * pixels.size).from_buffer_copy(pixels.tobytes())
    bitmap = M.mtmd_bitmap_init(IMAGE_SIZE, IMAGE_SIZE, data)
    chunks = M.mtmd_input_chunks_init()
    encoded = prompt.encode()
    text = M.mtmd_input_text()
    text.text, text.text_len = encoded, len(encoded)
    text.add_special, text.parse_special = True, True
    bitmaps = (M.mtmd_bitmap_p_ctypes * 1)(bitmap)
    assert M.mtmd_tokenize(ctx, chunks, ctypes.byref(text), bitmaps, 1) == 0
    M.mtmd_bitmap_free(bitmap)
    return chunks


def test_the_projector_loads_and_supports_vision(vlm: tuple[Any, Any, Any, Any]) -> None:
    _, M, _, ctx = vlm
    assert M.mtmd_support_vision(ctx) and not M.mtmd_support_audio(ctx)
    assert M.mtmd_default_marker() == b"<__media__>"


def test_an_image_is_its_tokens_between_text(vlm: tuple[Any, Any, Any, Any]) -> None:
    _, M, _, ctx = vlm
    chunks = _chunks(M, ctx, "the <__media__> is a cat")
    kinds = [
        M.mtmd_input_chunk_get_type(M.mtmd_input_chunks_get(chunks, i))
        for i in range(M.mtmd_input_chunks_size(chunks))
    ]
    assert kinds == [0, 1, 0]  # text, image, text
    image = M.mtmd_input_chunks_get(chunks, 1)
    assert M.mtmd_input_chunk_get_n_tokens(image) == IMAGE_TOKENS
    tokens = M.mtmd_input_chunk_get_tokens_image(image)
    grid = M.mtmd_image_tokens_get_nx(tokens) * M.mtmd_image_tokens_get_ny(tokens)
    assert grid == IMAGE_TOKENS == (IMAGE_SIZE // 8) ** 2  # LLaVA's mlp: one row of patches
    assert M.mtmd_encode_chunk(ctx, image) == 0
    embd = M.mtmd_get_output_embd(ctx)
    values = np.ctypeslib.as_array(embd, shape=(IMAGE_TOKENS * N_EMBD,))
    assert np.isfinite(values).all() and values.std() > 0  # the text model's width, per token
    M.mtmd_input_chunks_free(chunks)


def test_the_chunks_evaluate_into_the_context(vlm: tuple[Any, Any, Any, Any]) -> None:
    L, M, (_, lctx), ctx = vlm
    chunks = _chunks(M, ctx, "<__media__> the cat")
    total = M.mtmd_helper_get_n_tokens(chunks)
    assert total > IMAGE_TOKENS
    n_past = L.llama_pos(0)
    assert M.mtmd_helper_eval_chunks(ctx, lctx, chunks, 0, 0, 64, True, ctypes.byref(n_past)) == 0
    assert n_past.value == total
    logits = L.llama_get_logits_ith(lctx, -1)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(L.llama_get_model(lctx)))
    row = np.ctypeslib.as_array(logits, shape=(vocab,))
    assert np.isfinite(row).all()  # the next token after text, image and text can be sampled
    M.mtmd_input_chunks_free(chunks)
