"""What an image is, from its first bytes: format and pixel size, read from the header without
decoding it (so a small file that would decode to gigabytes is refused before it is decoded).

PNG, JPEG, GIF and BMP are the formats a local vision model decodes (llama.cpp's stb_image);
anything else reads as None.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEAD_BYTES = 256 * 1024  # enough for a JPEG's frame header after its EXIF and ICC segments


class ImageHeader(NamedTuple):
    format: str
    width: int
    height: int


def read_header(head: bytes) -> ImageHeader | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return ImageHeader("png", width, height)
    if head.startswith((b"GIF87a", b"GIF89a")) and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return ImageHeader("gif", width, height)
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return ImageHeader("bmp", abs(width), abs(height))
    if head.startswith(b"\xff\xd8"):
        return _jpeg(head)
    return None


# Start-of-frame markers (baseline, progressive, lossless ...), not DHT/JPG/DAC.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(head: bytes) -> ImageHeader | None:
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        if marker in _SOF and at + 9 <= len(head):
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return ImageHeader("jpeg", width, height)
        at += 2 + length
    return None
