"""Which text and media a delivery publishes: the account's variant, then the platform's
override, then the post's text."""

from __future__ import annotations

from dataclasses import replace

from postpilot.core import variants
from postpilot.publishers.base import AccountContext
from postpilot.scheduler import lookups
from tests.unit.test_engine import work_item

OVERRIDES = {"mastodon": "for mastodon"}
ACCOUNTS = {"acc-1": {"text": "for acc-1", "media_ids": ["m2"]}, "acc-2": {"text": "for acc-2"}}


def _text(platform: str, account_id: str) -> str:
    return variants.text_for(
        text="plain",
        overrides=OVERRIDES,
        account_overrides=ACCOUNTS,
        platform=platform,
        account_id=account_id,
    )


def test_the_account_variant_wins_over_the_platform_override() -> None:
    assert _text("mastodon", "acc-1") == "for acc-1"
    assert _text("mastodon", "acc-2") == "for acc-2"


def test_without_an_account_variant_the_platform_override_then_the_text() -> None:
    assert _text("mastodon", "acc-3") == "for mastodon"
    assert _text("bluesky", "acc-3") == "plain"


def test_account_media_replace_the_posts_and_only_when_given() -> None:
    urls = ["https://example.com/a.png", "media:m1"]

    def media(account_id: str) -> tuple[str, ...]:
        return variants.media_for(
            media_urls=urls, account_overrides=ACCOUNTS, account_id=account_id
        )

    assert media("acc-1") == ("media:m2",)
    assert media("acc-2") == tuple(urls)  # a text-only variant keeps the post's media
    assert media("acc-3") == tuple(urls)
    empty = {"acc-1": {"text": "t", "media_ids": []}}
    assert variants.media_for(media_urls=urls, account_overrides=empty, account_id="acc-1") == ()


def test_library_ids_lists_each_variant_media_once() -> None:
    stored = {
        "a": {"text": "x", "media_ids": ["m1", "m2"]},
        "b": {"text": "y", "media_ids": ["m2"]},
    }
    assert variants.library_ids(stored) == ["m1", "m2"]
    assert variants.AccountVariant("t", ("m1",)).stored() == {"text": "t", "media_ids": ["m1"]}
    assert variants.AccountVariant("t").stored() == {"text": "t"}


def test_read_back_looks_for_what_the_accounts_delivery_sent() -> None:
    item = work_item("mastodon")  # its post overrides the text on mastodon
    post = replace(item.post, account_overrides={"acct-1": {"text": "mine", "media_ids": ["m"]}})
    account = AccountContext("acct-1", "mastodon", "@someone", None, {}, {})
    lookup = lookups.lookup_for(replace(item, post=post), account, frozenset())
    assert lookup.request.text == "mine" and lookup.request.media_urls == ("media:m",)
    other = lookups.lookup_for(item, account, frozenset())
    assert other.request.text == "hello, platform" and other.request.media_urls == ()
