"""What a client uploads to the detector, decoded or refused before it costs memory."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from vertiflow.vision import detector


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring its size, with the start of its pixel data: what a decompression
    bomb's first bytes are (the whole bomb would cost the test its memory)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    pixels = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels)


def test_an_oversized_image_is_refused_from_its_header_before_decoding():
    """A 48 KB 1-bit PNG of 20000 x 20000 pixels was decoded first (2.35 GB and 3 s per
    request here), then refused for its size; a few at once could take the server down.
    Its header alone now refuses it, naming the size, before any pixel is decoded."""
    for item in (png_header(20000, 20000), base64.b64encode(png_header(12, 40000)).decode()):
        with pytest.raises(detector.ImageError, match="pixels; each side must be 16-10000"):
            detector.decode(item, "image 0")
