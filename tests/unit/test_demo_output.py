"""What the demo prints as its posts go out: each post once, with its text, when every one of
its deliveries has ended (whatever pass each ended in), then one line per platform with the
link, or what went wrong there."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from postpilot.cli.demo import post_lines
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event, Transition
from postpilot.store.work import ClaimedDelivery, Decision
from postpilot.tools import demo
from tests.mock_platform import NOW

SEEDED = demo.Seeded(
    workspace_id="ws-1",
    account_ids=["a-m", "a-x"],
    platforms=["mastodon", "x"],
    post_ids=["post-1", "post-2"],
    deliveries=3,
    first_due=NOW,
    last_due=NOW,
    texts={"post-1": "Good morning! #launch (ab-1)", "post-2": "We are [hiring] (ab-2)"},
    targets={"post-1": 2, "post-2": 1},
    handles={"a-mastodon": "@news@sandbox.local", "a-x": "@brand_x"},
)


def decided(post_id: str, platform: str, status: DeliveryStatus, *, detail: str = "") -> Decision:
    event = {
        DeliveryStatus.PUBLISHED: Event.PUBLISHED,
        DeliveryStatus.FAILED: Event.FAILED,
        DeliveryStatus.SCHEDULED: Event.RETRY_SCHEDULED,
    }[status]
    link = f"https://{platform}.sandbox/{post_id}" if status is DeliveryStatus.PUBLISHED else None
    return Decision(
        delivery=ClaimedDelivery(
            id=f"{post_id}-{platform}",
            workspace_id="ws-1",
            post_id=post_id,
            account_id=f"a-{platform}",
            platform=platform,
            attempts=0,
            scheduled_at=NOW,
            due_at=NOW,
            idempotency_key="k",
            recovered=False,
        ),
        transition=Transition(
            status=status,
            attempts=1,
            due_at=NOW + timedelta(minutes=1),
            event=event,
            detail=detail,
            platform_url=link,
        ),
    )


def rendered(post: demo.Settled) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    for line in post_lines(post):
        console.print(line, highlight=False)
    return out.getvalue().splitlines()


def test_a_post_is_printed_once_when_all_its_deliveries_have_ended() -> None:
    outcomes = demo.Outcomes(SEEDED)
    first = outcomes.add(
        [
            decided("post-1", "x", DeliveryStatus.PUBLISHED),
            decided("post-1", "mastodon", DeliveryStatus.SCHEDULED),  # retried: comes back
            decided("post-2", "mastodon", DeliveryStatus.PUBLISHED),
            decided("not-a-demo-post", "x", DeliveryStatus.PUBLISHED),
        ]
    )
    assert [p.text for p in first] == ["We are [hiring] (ab-2)"]
    (second,) = outcomes.add([decided("post-1", "mastodon", DeliveryStatus.PUBLISHED)])
    assert rendered(second) == [
        "  published 'Good morning! #launch (ab-1)'",
        "    mastodon @news@sandbox.local  https://mastodon.sandbox/post-1",
        "    x @brand_x                    https://x.sandbox/post-1",
    ]
    assert rendered(first[0]) == [
        "  published 'We are [hiring] (ab-2)'",
        "    mastodon @news@sandbox.local  https://mastodon.sandbox/post-2",
    ]
    assert outcomes.add([decided("post-1", "x", DeliveryStatus.PUBLISHED)]) == []


def test_a_delivery_that_failed_says_why_on_its_platform_line() -> None:
    outcomes = demo.Outcomes(SEEDED)
    (post,) = outcomes.add(
        [
            decided("post-1", "mastodon", DeliveryStatus.PUBLISHED),
            decided("post-1", "x", DeliveryStatus.FAILED, detail="text too long for x"),
        ]
    )
    assert rendered(post) == [
        "  published to 1 of 2 'Good morning! #launch (ab-1)'",
        "    mastodon @news@sandbox.local  https://mastodon.sandbox/post-1",
        "    x @brand_x                    failed: text too long for x",
    ]
