"""Images made for the tests, with Pillow: plain, noisy (incompressible), or carrying EXIF."""

from __future__ import annotations

import io
import random

from PIL import Image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def plain(width: int = 64, height: int = 48, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    colour = (200, 40, 40, 128) if mode == "RGBA" else (200, 40, 40)
    return encoded(Image.new(mode, (width, height), colour), fmt)


def noisy(width: int, height: int, fmt: str = "PNG", seed: int = 7) -> bytes:
    """Random pixels: PNG cannot shrink them, so the file is about width x height x 3 bytes."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    return encoded(Image.frombytes("RGB", (width, height), pixels), fmt)


def with_orientation(width: int, height: int, orientation: int = 6) -> bytes:
    """A JPEG whose EXIF says how to turn it (6: 90 degrees clockwise) and where it was made."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make
    return encoded(image, "JPEG", exif=exif.tobytes())


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def exif_of(data: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())
