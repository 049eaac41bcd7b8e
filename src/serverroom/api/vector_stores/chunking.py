"""A file's text and its chunks: what ingestion stores and search ranks.

Text comes out of plain text, Markdown, code, JSON, HTML (tags, scripts and styles dropped) and
PDF (``pypdf``); anything else that is valid UTF-8 is read as text, and a file that is neither
fails with ``unsupported_file``. Chunks follow the request's ``chunking_strategy``: ``auto`` is
``static`` with 800 tokens and 400 of overlap, as on the platform; tokens are counted with the
embedding model's tokenizer, word by word, so chunks end between words.
"""

from __future__ import annotations

import html.parser
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar

from serverroom.errors import InvalidRequestError

AUTO = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
JSONObj = dict[str, Any]
MIN_CHUNK, MAX_CHUNK = 100, 4096  # the platform's bounds on max_chunk_size_tokens
WORD = re.compile(r"\S+\s*")


class ExtractionError(Exception):
    """The file's text could not be read; ``code`` is the platform's ``last_error.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def chunking_strategy(raw: dict[str, Any] | None, param: str = "chunking_strategy") -> JSONObj:
    """The stored (``static``) form of a request's ``chunking_strategy``; 400 if invalid."""
    if raw is None or raw.get("type") == "auto":
        return AUTO
    if raw.get("type") != "static" or not isinstance(raw.get("static"), dict):
        raise InvalidRequestError(
            "chunking_strategy must be {'type': 'auto'} or {'type': 'static', 'static': {...}}.",
            param=param,
        )
    static = raw["static"]
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if not isinstance(size, int) or not MIN_CHUNK <= size <= MAX_CHUNK:
        raise InvalidRequestError(
            f"max_chunk_size_tokens must be an integer from {MIN_CHUNK} to {MAX_CHUNK}.",
            param=f"{param}.static.max_chunk_size_tokens",
        )
    if not isinstance(overlap, int) or not 0 <= overlap <= size // 2:
        raise InvalidRequestError(
            "chunk_overlap_tokens must be an integer from 0 to half of max_chunk_size_tokens.",
            param=f"{param}.static.chunk_overlap_tokens",
        )
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


class _HTMLText(html.parser.HTMLParser):
    SKIP: ClassVar[set[str]] = {"script", "style", "head", "noscript", "template"}
    BLOCKS: ClassVar[set[str]] = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "pre",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError("invalid_file", f"The PDF could not be read: {exc}") from exc
    return "\n\n".join(pages)


def extract_text(filename: str, data: bytes) -> str:
    """The text of a file (by its extension, then by its bytes); ``ExtractionError`` if none."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix == ".pdf" or data.startswith(b"%PDF-"):
        text = _pdf_text(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ExtractionError(
                "unsupported_file",
                f"The file type of {filename!r} is not supported (it is not text, nor a PDF).",
            ) from exc
        if suffix in (".html", ".htm") or text.lstrip()[:15].lower().startswith("<!doctype html"):
            parser = _HTMLText()
            parser.feed(text)
            text = "".join(parser.parts)
        elif suffix == ".json":
            try:
                json.loads(text)
            except ValueError as exc:
                raise ExtractionError("invalid_file", f"The JSON file is invalid: {exc}") from exc
    text = re.sub(r"[ \t]+\n", "\n", text).replace("\x00", "")
    if not text.strip():
        raise ExtractionError("invalid_file", f"No text could be read from {filename!r}.")
    return text


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    tokens: list[int]


def chunk_text(text: str, strategy: JSONObj, tokenize: Callable[[str], list[int]]) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``max_chunk_size_tokens`` embedding-model tokens,
    each starting ``chunk_overlap_tokens`` before the previous one ended (whole words)."""
    size = strategy["static"]["max_chunk_size_tokens"]
    overlap = strategy["static"]["chunk_overlap_tokens"]
    words = WORD.findall(text)
    known: dict[str, list[int]] = {}
    pieces = [known.setdefault(w, tokenize(w)) or [] for w in words]
    chunks: list[Chunk] = []
    start = 0
    while start < len(words):
        end, count = start, 0
        while end < len(words) and (count + len(pieces[end]) <= size or end == start):
            count += len(pieces[end])
            end += 1
        ids = [t for piece in pieces[start:end] for t in piece][:size]
        chunks.append(Chunk(len(chunks), "".join(words[start:end]).strip(), ids))
        if end >= len(words):
            break
        back, kept = end, 0  # the next chunk repeats the last ``overlap`` tokens of this one
        while back > start + 1 and kept + len(pieces[back - 1]) <= overlap:
            back -= 1
            kept += len(pieces[back])
        start = back
    return chunks
