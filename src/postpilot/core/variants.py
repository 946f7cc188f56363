"""Which text and media a delivery publishes. Pure: the account's variant wins over its
platform's override, which wins over the post's own text.

A post stores its account variants as JSON, `{account_id: {"text": ..., "media_ids": [...]}}`;
`media_ids` is optional and, when given, replaces all of the post's media for that account
(an empty list publishes that account's delivery without media).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from postpilot.core.media_limits import LIBRARY_PREFIX


@dataclass(frozen=True, slots=True)
class AccountVariant:
    text: str
    media_ids: tuple[str, ...] | None = None

    def stored(self) -> dict[str, Any]:
        """The JSON a post keeps for this variant."""
        if self.media_ids is None:
            return {"text": self.text}
        return {"text": self.text, "media_ids": list(self.media_ids)}


def from_stored(value: Mapping[str, Any]) -> AccountVariant:
    media = value.get("media_ids")
    return AccountVariant(
        text=str(value.get("text", "")),
        media_ids=None if media is None else tuple(str(i) for i in media),
    )


def text_for(
    *,
    text: str,
    overrides: Mapping[str, str],
    account_overrides: Mapping[str, Mapping[str, Any]],
    platform: str,
    account_id: str,
) -> str:
    """The text one account's delivery publishes."""
    variant = account_overrides.get(account_id)
    if variant is not None:
        return from_stored(variant).text
    return overrides.get(platform, text)


def media_for(
    *,
    media_urls: Sequence[str],
    account_overrides: Mapping[str, Mapping[str, Any]],
    account_id: str,
) -> tuple[str, ...]:
    """The media one account's delivery publishes, as a post stores them (URLs and
    `media:<id>` library references)."""
    variant = account_overrides.get(account_id)
    if variant is not None and (media := from_stored(variant).media_ids) is not None:
        return tuple(f"{LIBRARY_PREFIX}{media_id}" for media_id in media)
    return tuple(media_urls)


def library_ids(account_overrides: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every library media an account variant uses, once each, in first-use order: the post
    needs them kept as much as its own."""
    seen: dict[str, None] = {}
    for variant in account_overrides.values():
        for media_id in from_stored(variant).media_ids or ():
            seen.setdefault(media_id)
    return list(seen)
