"""The order of parts, without a platform: what is sent, what is skipped, what an outcome short
of the end says, and a part that cannot be recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers import chain
from postpilot.publishers.base import AccountContext, PublishRequest
from postpilot.publishers.parts import Part, SentPart

ACCOUNT = AccountContext("a1", "mastodon", "@me", None, {}, {})


def _request(**changes: object) -> PublishRequest:
    request = PublishRequest(
        delivery_id="d1",
        idempotency_key="key",
        text="post",
        media_urls=(),
        account=ACCOUNT,
        scheduled_at=datetime(2026, 12, 1, tzinfo=UTC),
        attempt=1,
        thread=(Part("reply 1"), Part("reply 2")),
    )
    return replace(request, **changes)  # type: ignore[arg-type]


class Platform:
    """Takes every part, or refuses the one at `refuse` with `outcome`."""

    def __init__(self, refuse: int | None = None, outcome: outcomes.Outcome | None = None):
        self.refuse, self.outcome = refuse, outcome
        self.sent: list[tuple[int, str, str | None]] = []

    async def send(
        self, index: int, part: Part, before: tuple[SentPart, ...]
    ) -> SentPart | outcomes.Outcome:
        if index == self.refuse and self.outcome is not None:
            return self.outcome
        self.sent.append((index, part.text, before[-1].platform_post_id if before else None))
        return SentPart(index, f"id-{index}", url=f"https://example.test/{index}")


async def test_parts_go_in_order_each_after_the_one_before() -> None:
    platform = Platform()
    outcome = await chain.publish_parts(_request(), platform.send)
    assert outcome == outcomes.Published("id-0", url="https://example.test/0")
    assert platform.sent == [(0, "post", None), (1, "reply 1", "id-0"), (2, "reply 2", "id-1")]


async def test_parts_already_sent_are_skipped_and_the_rest_reply_to_them() -> None:
    platform = Platform()
    done = (SentPart(0, "id-0"), SentPart(1, "id-1"))
    outcome = await chain.publish_parts(_request(sent=done, attempt=2), platform.send)
    assert isinstance(outcome, outcomes.Published) and outcome.platform_post_id == "id-0"
    assert platform.sent == [(2, "reply 2", "id-1")]


async def test_an_outcome_short_of_the_end_names_its_part_and_a_token_does_not() -> None:
    refused = Platform(1, outcomes.Ambiguous("timed out"))
    outcome = await chain.publish_parts(_request(), refused.send)
    assert outcome == outcomes.Ambiguous("part 2 of 3: timed out")
    expired = Platform(2, outcomes.TokenExpired("bad token"))
    assert await chain.publish_parts(_request(), expired.send) == outcomes.TokenExpired("bad token")
    single = Platform(0, outcomes.Permanent("too long"))
    assert await chain.publish_parts(_request(thread=()), single.send) == outcomes.Permanent(
        "too long"
    )


async def test_a_part_that_cannot_be_recorded_stops_the_thread_in_doubt() -> None:
    async def record(part: SentPart) -> None:
        if part.index == 1:
            raise ConnectionError("database away")

    platform = Platform()
    outcome = await chain.publish_parts(_request(record_part=record), platform.send)
    assert outcome == outcomes.Ambiguous("part 2 of 3 was sent but could not be recorded")
    assert [index for index, _, _ in platform.sent] == [0, 1]  # part 3 was not sent


async def test_a_first_comment_is_the_second_part_and_each_part_has_its_own_key() -> None:
    request = _request(thread=(), first_comment="first!")
    assert chain.all_parts(request) == (Part("post"), Part("first!"))
    assert [chain.part_key(request, i) for i in range(3)] == ["key", "key:1", "key:2"]
    assert chain.has_parts(request) and not chain.has_parts(_request(thread=()))
