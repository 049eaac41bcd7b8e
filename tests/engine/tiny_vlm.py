"""A tiny vision-language model, built with the ``gguf`` package for tests: random weights, a
real llama text model (64 wide, 2 layers, a byte vocabulary) and a real CLIP ``mlp`` projector
(LLaVA-1.5's layout: 32x32 images in 8x8 patches, so 16 image tokens projected to the text
model's width). Answers are noise; shapes, token counts and plumbing are what tests check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_EMBD = 64
IMAGE_SIZE = 32
PATCH = 8
IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2
_V_HIDDEN, _V_FFN, _V_HEADS, _V_BLOCKS = 32, 64, 2, 2  # 2 blocks: llava runs n_layer - 1


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    words = [b"\xe2\x96\x81" + w for w in (b"a", b"cat", b"the", b"image", b"is")]
    tokens += words
    scores = [0.0] * 3 + [-1000.0] * 256 + [-1.0] * len(words)
    types = [2, 3, 3] + [6] * 256 + [1] * len(words)
    return tokens, scores, types


def write_text_model(path: Path, seed: int = 0) -> Path:
    """A llama-architecture GGUF of ``N_EMBD`` width with random weights."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-vlm-text")
    writer.add_context_length(512)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(2)
    writer.add_feed_forward_length(128)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(N_EMBD // 2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    n_vocab = len(tokens)
    writer.add_tensor("token_embd.weight", _rand(rng, n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", _rand(rng, n_vocab, N_EMBD))
    for i in range(2):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", _rand(rng, N_EMBD, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", _rand(rng, 128, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", _rand(rng, 128, N_EMBD))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", _rand(rng, N_EMBD, 128))
    _finish(writer)
    return path


def write_mmproj(path: Path, seed: int = 1) -> Path:
    """A CLIP vision encoder with LLaVA-1.5's ``mlp`` projector to ``N_EMBD``."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_name("tiny-vlm-mmproj")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH)
    writer.add_uint32("clip.vision.embedding_length", _V_HIDDEN)
    writer.add_uint32("clip.vision.feed_forward_length", _V_FFN)
    writer.add_uint32("clip.vision.projection_dim", N_EMBD)
    writer.add_uint32("clip.vision.block_count", _V_BLOCKS)
    writer.add_uint32("clip.vision.attention.head_count", _V_HEADS)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    h, f = _V_HIDDEN, _V_FFN
    writer.add_tensor("v.patch_embd.weight", _rand(rng, h, 3, PATCH, PATCH))
    writer.add_tensor("v.position_embd.weight", _rand(rng, IMAGE_TOKENS, h))
    for name in ("v.pre_ln", "v.post_ln"):
        writer.add_tensor(f"{name}.weight", np.ones(h, dtype=np.float32))
        writer.add_tensor(f"{name}.bias", np.zeros(h, dtype=np.float32))
    for i in range(_V_BLOCKS):
        block = f"v.blk.{i}"
        for norm in ("ln1", "ln2"):
            writer.add_tensor(f"{block}.{norm}.weight", np.ones(h, dtype=np.float32))
            writer.add_tensor(f"{block}.{norm}.bias", np.zeros(h, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"{block}.{name}.weight", _rand(rng, h, h))
            writer.add_tensor(f"{block}.{name}.bias", np.zeros(h, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_up.weight", _rand(rng, f, h))
        writer.add_tensor(f"{block}.ffn_up.bias", np.zeros(f, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_down.weight", _rand(rng, h, f))
        writer.add_tensor(f"{block}.ffn_down.bias", np.zeros(h, dtype=np.float32))
    writer.add_tensor("mm.0.weight", _rand(rng, N_EMBD, h))
    writer.add_tensor("mm.0.bias", np.zeros(N_EMBD, dtype=np.float32))
    writer.add_tensor("mm.2.weight", _rand(rng, N_EMBD, N_EMBD))
    writer.add_tensor("mm.2.bias", np.zeros(N_EMBD, dtype=np.float32))
    _finish(writer)
    return path


def _finish(writer: object) -> None:
    writer.write_header_to_file()  # type: ignore[attr-defined]
    writer.write_kv_data_to_file()  # type: ignore[attr-defined]
    writer.write_tensors_to_file()  # type: ignore[attr-defined]
    writer.close()  # type: ignore[attr-defined]


def png(width: int = IMAGE_SIZE, height: int = IMAGE_SIZE, seed: int = 0) -> bytes:
    """A PNG of random RGB pixels (written with zlib, as the PNG format specifies)."""
    import struct
    import zlib

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
