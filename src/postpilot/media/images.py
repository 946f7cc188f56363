"""Image bytes in and out, with Pillow: what an upload is (type from its content, never from what
the client claims), the variant that suits the chosen platforms, and a thumbnail. CPU-bound and
synchronous: callers run these in a thread."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from postpilot.core import media_limits
from postpilot.errors import PostpilotError

_TYPES = {
    "JPEG": media_limits.JPEG,
    "PNG": media_limits.PNG,
    "GIF": media_limits.GIF,
    "WEBP": media_limits.WEBP,
}
_SAVE_AS = {value: key for key, value in _TYPES.items()}
THUMBNAIL_SIZE = 320
_ORIENTATION = 0x0112


class NotAnImage(PostpilotError):
    """The file is not a JPEG, PNG, GIF or WebP image that can be decoded."""


class TooManyPixels(PostpilotError):
    """The image has more pixels than the library takes."""


class CannotNormalise(PostpilotError):
    """An animated image that a chosen platform cannot take as it is."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_type: str
    width: int
    height: int
    animated: bool
    # EXIF (camera, place) or a rotation flag: stripped and applied before it is published.
    has_metadata: bool


@dataclass(frozen=True, slots=True)
class Encoded:
    content: bytes
    content_type: str
    width: int
    height: int


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        # Our own pixel cap is checked below; Pillow's warning would only repeat it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise TooManyPixels(f"the image has more than {max_pixels} pixels") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise NotAnImage() from exc
    if image.format not in _TYPES:
        raise NotAnImage(f"the file is {image.format or 'unknown'}, not a JPEG, PNG, GIF or WebP")
    width, height = image.size
    if width < 1 or height < 1:
        raise NotAnImage("the image has no pixels")
    if width * height > max_pixels:
        raise TooManyPixels(
            f"the image is {width}x{height} = {width * height} pixels, the limit is {max_pixels}"
        )
    return image


def inspect(data: bytes, *, max_pixels: int) -> ImageInfo:
    """What `data` is, decoded whole once so a truncated or corrupt file is refused now."""
    image = _open(data, max_pixels)
    content_type = _TYPES[str(image.format)]
    animated = bool(getattr(image, "is_animated", False))
    exif = image.getexif()
    has_metadata = bool(exif) or "exif" in image.info or "xmp" in image.info
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage("the image could not be decoded (truncated or corrupt)") from exc
    return ImageInfo(content_type, image.width, image.height, animated, has_metadata)


def normalise(
    data: bytes, info: ImageInfo, goal: media_limits.Target, *, max_pixels: int
) -> Encoded | None:
    """The variant to publish, or None when the upload suits every chosen platform as it is.
    Static images lose their metadata, are turned by their EXIF orientation, scaled down to the
    platforms' pixel limits and converted to a type they all take."""
    size = media_limits.fits(info.width, info.height, goal)
    type_ok = info.content_type in goal.types
    if info.animated:
        if type_ok and size == (info.width, info.height):
            return None  # re-encoding an animation would lose frames' timing: keep it
        raise CannotNormalise(
            f"an animated {info.content_type} cannot be converted or scaled for these "
            f"platforms (they take {', '.join(sorted(goal.types))}"
            + (f", at most {size[0]}x{size[1]}" if size != (info.width, info.height) else "")
            + ")"
        )
    if type_ok and not info.has_metadata and size == (info.width, info.height):
        return None
    image = _open(data, max_pixels)
    image = ImageOps.exif_transpose(image)
    # The rotation may have swapped the sides: fit the turned image.
    size = media_limits.fits(image.width, image.height, goal)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    content_type = _output_type(info.content_type, _has_alpha(image), goal.types)
    return Encoded(_encode(image, content_type), content_type, image.width, image.height)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _output_type(current: str, alpha: bool, accepted: frozenset[str]) -> str:
    if current in accepted and current != media_limits.GIF:
        return current
    if alpha and media_limits.PNG in accepted:
        return media_limits.PNG
    for choice in (media_limits.JPEG, media_limits.PNG, media_limits.WEBP, media_limits.GIF):
        if choice in accepted:
            return choice
    return media_limits.JPEG


def _encode(image: Image.Image, content_type: str) -> bytes:
    icc = image.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if content_type == media_limits.JPEG:
        image = _flattened(image)
        extra.update(quality=90, optimize=True)
    elif content_type == media_limits.PNG:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            image = image.convert("RGBA")
        extra.update(optimize=True)
    elif content_type == media_limits.WEBP:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        extra.update(quality=90)
    out = io.BytesIO()
    # No exif= argument: the new file carries no EXIF (place, camera) at all.
    image.save(out, format=_SAVE_AS[content_type], **extra)
    return out.getvalue()


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, transparent pixels on white (JPEG has no alpha)."""
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def thumbnail(data: bytes, *, max_pixels: int, side: int = THUMBNAIL_SIZE) -> Encoded:
    """A JPEG at most `side` pixels wide and high, turned upright, without metadata."""
    image = ImageOps.exif_transpose(_open(data, max_pixels))
    image = _flattened(image)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return Encoded(_encode(image, media_limits.JPEG), media_limits.JPEG, *image.size)


def sniff(data: bytes) -> str | None:
    """The content type of stored bytes, from their header only."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return _TYPES.get(str(image.format))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
