"""Tiny valid PNG images made on the fly, so demos and tests need no files or network."""

from __future__ import annotations

import hashlib
import struct
import zlib


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

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


def sandbox_media(name: str) -> tuple[bytes, str]:
    """What `/_sandbox/media/{name}` serves: `*.png` is a small image (its colour derives from
    the name), `big-*.png` a large one, anything else is not an image."""
    if name.endswith(".png"):
        colour = hashlib.sha256(name.encode()).digest()[:3]
        size = 2048 if name.startswith("big-") else 8
        return png(size, size, (colour[0], colour[1], colour[2])), "image/png"
    return b"this is not an image", "text/plain"
