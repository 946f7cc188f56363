"""The library's image work, on images made here: what an upload is, the variant that suits the
chosen platforms, thumbnails, and the refusals that name a platform and its limit."""

from __future__ import annotations

import pytest

from postpilot.core import media_limits
from postpilot.media import images, library
from tests.media import pictures

MAX = 50_000_000


def test_type_comes_from_the_content() -> None:
    info = images.inspect(pictures.plain(fmt="WEBP"), max_pixels=MAX)
    assert (info.content_type, info.width, info.height) == ("image/webp", 64, 48)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 not an image", b"GIF89a" + b"\x00" * 10, pictures.plain(fmt="BMP")],
    ids=["pdf", "truncated-gif", "bmp"],
)
def test_what_is_not_a_usable_image_is_refused(data: bytes) -> None:
    with pytest.raises(images.NotAnImage):
        images.inspect(data, max_pixels=MAX)


def test_a_truncated_image_is_refused() -> None:
    data = pictures.noisy(100, 100, fmt="JPEG")
    with pytest.raises(images.NotAnImage, match="truncated or corrupt"):
        images.inspect(data[: len(data) // 2], max_pixels=MAX)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(images.TooManyPixels, match="limit is 1000"):
        images.inspect(pictures.plain(64, 48), max_pixels=1000)


def test_an_image_that_suits_is_published_as_it_came() -> None:
    data = pictures.plain(fmt="PNG")
    prepared = library._prepare(data, ["mastodon", "bluesky"], MAX)
    assert prepared.variant.content == data


def test_exif_is_applied_and_stripped() -> None:
    data = pictures.with_orientation(80, 40, orientation=6)
    assert pictures.exif_of(data)
    prepared = library._prepare(data, ["mastodon"], MAX)
    variant = prepared.variant
    assert (variant.content_type, variant.width, variant.height) == ("image/jpeg", 40, 80)
    assert pictures.size_of(variant.content) == (40, 80)
    assert pictures.exif_of(variant.content) == {}, "no camera, place or rotation flag left"
    assert pictures.size_of(prepared.thumbnail.content) == (40, 80)


def test_a_type_a_platform_does_not_take_is_converted() -> None:
    data = pictures.plain(fmt="GIF")
    prepared = library._prepare(data, ["bluesky"], MAX)
    assert prepared.variant.content_type in {"image/png", "image/jpeg"}
    assert images.sniff(prepared.variant.content) == prepared.variant.content_type


def test_transparency_kept_where_png_is_taken_and_flattened_for_jpeg_only() -> None:
    data = pictures.plain(fmt="WEBP", mode="RGBA")
    goal = media_limits.Target(types=frozenset({"image/png"}), max_pixels=None, max_side_sum=None)
    info = images.inspect(data, max_pixels=MAX)
    as_png = images.normalise(data, info, goal, max_pixels=MAX)
    assert as_png is not None and as_png.content_type == "image/png"
    jpeg_only = media_limits.Target(frozenset({"image/jpeg"}), None, None)
    as_jpeg = images.normalise(data, info, jpeg_only, max_pixels=MAX)
    assert as_jpeg is not None and as_jpeg.content_type == "image/jpeg"


def test_downscaled_to_the_platforms_pixel_limits() -> None:
    data = pictures.plain(200, 100)
    goal = media_limits.Target(frozenset({"image/png"}), max_pixels=5_000, max_side_sum=None)
    variant = images.normalise(data, images.inspect(data, max_pixels=MAX), goal, max_pixels=MAX)
    assert variant is not None
    assert variant.width * variant.height <= 5_000
    assert abs(variant.width / variant.height - 2) < 0.05
    telegram = media_limits.target(["telegram"])
    assert media_limits.fits(9_000, 3_000, telegram) == (7_500, 2_500)


def test_thumbnail_is_a_small_jpeg() -> None:
    prepared = library._prepare(pictures.plain(1000, 500), [], MAX)
    assert prepared.thumbnail.content_type == "image/jpeg"
    assert pictures.size_of(prepared.thumbnail.content) == (320, 160)


def test_too_big_for_a_chosen_platform_names_it_and_its_limit() -> None:
    data = pictures.noisy(700, 700)  # about 1.47 MB, PNG cannot shrink it
    with pytest.raises(library.MediaRefused) as refused:
        library._prepare(data, ["bluesky", "mastodon"], MAX)
    assert refused.value.code == "media_not_allowed"
    assert refused.value.problems == [
        f"bluesky: the image is {len(data)} bytes, the limit is 1000000"
    ]
    library._prepare(data, ["mastodon"], MAX)  # fine where the limit is larger


def test_platforms_that_fetch_by_url_get_a_variant_they_take() -> None:
    # They download it from a signed link (media/links.py): a JPEG for Instagram.
    prepared = library._prepare(pictures.plain(), ["instagram"], MAX)
    assert prepared.variant.content_type == "image/jpeg"


def test_ratio_limits_name_the_platform() -> None:
    found = media_limits.problems(
        ["telegram"], content_type="image/png", size=10, width=2_100, height=100
    )
    assert found == ["telegram: width/height is 21.00, the most it takes is 20.00"]


def test_an_animation_is_kept_or_refused_never_flattened() -> None:
    frames = [pictures.Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = pictures.encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert library._prepare(data, ["mastodon"], MAX).variant.content == data
    with pytest.raises(library.MediaRefused, match="animated image/gif cannot be converted"):
        library._prepare(data, ["bluesky"], MAX)
