"""Per-platform limits: how each platform counts, and the messages a person reads."""

from __future__ import annotations

import pytest

from postpilot.core import limits
from postpilot.publishers.registry import supported_platforms


def test_every_supported_platform_has_limits() -> None:
    assert set(supported_platforms()) <= set(limits.LIMITS)


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hello", 5),
        ("https://example.com/a/very/long/path/that/is/longer/than/23", 23),
        ("see www.example.com now", 4 + 23 + 4),
        ("日本語", 6),  # CJK weighs 2
        ("😀", 2),
        ("👍🏽", 2),  # emoji + skin tone modifier: one emoji
        ("👨‍👩‍👧", 2),  # a ZWJ family is one emoji
        ("🇫🇷", 2),  # a flag
        ("e\u0301", 1),  # NFC composes e + combining acute into é
        ("\u2019", 1),  # typographic quote is in a light range
    ],
)
def test_x_weighted_length(text: str, weight: int) -> None:
    assert limits.count_x_weighted(text) == weight


def test_x_limit_is_280_weighted() -> None:
    x = limits.limits_for("x")
    assert x.problems("a" * 280, 0) == []
    assert x.problems("日" * 140, 0) == []
    assert x.problems("日" * 141, 0) == ["x: text is 282 weighted characters, the limit is 280"]
    # 10 URLs of any length are 230 + 9 spaces.
    urls = " ".join(f"https://example.com/{'p' * 50}/{i}" for i in range(10))
    assert x.problems(urls, 0) == []


def test_bluesky_counts_graphemes_and_bytes() -> None:
    bluesky = limits.limits_for("bluesky")
    family = "👨‍👩‍👧"  # 1 grapheme, 18 bytes
    assert limits.count_graphemes(family * 300) == 300
    assert bluesky.problems("a" * 300, 0) == []
    assert bluesky.problems("a" * 301, 0) == ["bluesky: text is 301 graphemes, the limit is 300"]
    problems = bluesky.problems(family * 200, 0)
    assert problems == ["bluesky: text is 3600 bytes in UTF-8, the limit is 3000"]


def test_threads_counts_emoji_as_bytes() -> None:
    assert limits.count_threads("ab😀") == 2 + 4
    threads = limits.limits_for("threads")
    assert threads.problems("a" * 500, 0) == []
    assert threads.problems("a" * 497 + "😀", 0) == [
        "threads: text is 501 characters, the limit is 500"
    ]


def test_telegram_caption_is_shorter_than_a_message() -> None:
    telegram = limits.limits_for("telegram")
    assert telegram.problems("a" * 4096, 0) == []
    assert telegram.problems("a" * 4097, 0) == [
        "telegram: text is 4097 characters, the limit is 4096"
    ]
    assert telegram.problems("a" * 1024, 1) == []
    assert telegram.problems("a" * 1025, 1) == [
        "telegram: text with an image is a caption of 1025 characters, the limit is 1024"
    ]


def test_instagram_needs_an_image_but_not_text() -> None:
    instagram = limits.limits_for("instagram")
    assert instagram.problems("", 1) == []
    assert instagram.problems("caption", 0) == ["instagram: at least one image is required"]
    assert instagram.problems("a" * 2201, 1) == [
        "instagram: text is 2201 characters, the limit is 2200"
    ]
    assert instagram.problems("", 2) == ["instagram: 2 images attached, the limit is 1"]


@pytest.mark.parametrize(
    ("platform", "limit"),
    [("linkedin", 3000), ("discord", 2000), ("slack", 40_000), ("mastodon", 500)],
)
def test_plain_character_limits(platform: str, limit: int) -> None:
    rules = limits.limits_for(platform)
    assert rules.problems("a" * limit, 0) == []
    assert rules.problems("a" * (limit + 1), 0) == [
        f"{platform}: text is {limit + 1} characters, the limit is {limit}"
    ]


def test_facebook_limit_is_a_setting() -> None:
    assert limits.limits_for("facebook").max_text == limits.FACEBOOK_DEFAULT_MAX_TEXT
    custom = limits.limits_for("facebook", max_text={"facebook": 10})
    assert custom.problems("a" * 11, 0) == ["facebook: text is 11 characters, the limit is 10"]
    # Overrides for other platforms leave this one alone.
    assert limits.limits_for("x", max_text={"facebook": 10}).max_text == 280


def test_matrix_is_generous_and_counts_bytes() -> None:
    matrix = limits.limits_for("matrix")
    assert matrix.problems("a" * 40_000, 0) == []
    assert matrix.problems("é" * 30_001, 0) == ["matrix: text is 60002 bytes, the limit is 60000"]


def test_empty_text_and_too_many_images() -> None:
    x = limits.limits_for("x")
    assert x.problems("  ", 0) == ["x: text must not be empty"]
    assert x.problems("", 1) == []  # an image alone is a post
    assert x.problems("hi", 5) == ["x: 5 images attached, the limit is 4"]
