"""Each platform's thread or first-comment contract against the sandbox: parts go out in order,
each replying to the one before (or commenting on the post), each is handed to the recorder as
it is sent, and a request that carries parts already sent resumes after them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, PublishRequest
from postpilot.publishers.parts import Part, SentPart
from postpilot.publishers.registry import PUBLISHERS
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import account, publish_request, unique

Ctx = Callable[[str], PublishContext]
THREADS = ["mastodon", "bluesky", "x", "threads"]
COMMENTS = ["instagram", "linkedin", "facebook"]


def _account(sandbox: SandboxClient, platform: str) -> AccountContext:
    if platform == "mastodon":
        return account("mastodon", {"access_token": "m-token"})
    if platform == "bluesky":
        did = "did:plc:contracts"
        token = sandbox.issue_token("bluesky", did, refresh=False)["access_token"]
        return account("bluesky", {"did": did, "access_jwt": token}, handle="me.bsky.social")
    if platform == "x":
        return account("x", {"access_token": "x-token"}, handle="@me")
    if platform == "threads":
        token = sandbox.issue_token("threads", "th-owner", refresh=False)["access_token"]
        return account("threads", {"access_token": token}, {"threads_user_id": "1789"})
    if platform == "linkedin":
        token = sandbox.issue_token("linkedin", "li-member", refresh=False)["access_token"]
        return account("linkedin", {"access_token": token}, {"author_urn": "urn:li:person:me"})
    if platform == "facebook":
        token = sandbox.issue_token("facebook", "fb-page", refresh=False)["access_token"]
        return account("facebook", {"page_access_token": token}, {"page_id": "1029"})
    token = sandbox.issue_token("instagram", "ig-owner", refresh=False)["access_token"]
    return account("instagram", {"access_token": token}, {"ig_user_id": "17841400000000001"})


def _thread_request(acct: AccountContext, sent: list[SentPart]) -> PublishRequest:
    async def record(part: SentPart) -> None:
        sent.append(part)

    request = publish_request(acct, unique("1/3"))
    return replace(
        request,
        thread=(Part(unique("2/3")), Part(unique("3/3"))),
        record_part=record,
    )


def _parent(platform: str, record: dict[str, Any]) -> str | None:
    extra = record["extra"]
    parent = {
        "mastodon": extra.get("in_reply_to_id"),
        "bluesky": extra.get("reply_parent"),
        "x": extra.get("in_reply_to_tweet_id"),
        "threads": extra.get("reply_to_id"),
    }[platform]
    return None if parent is None else str(parent)


def _id(platform: str, record: dict[str, Any]) -> str:
    return str(record["extra"]["uri"] if platform == "bluesky" else record["id"])


@pytest.mark.parametrize("platform", THREADS)
async def test_a_thread_goes_out_in_order_each_part_replying_to_the_one_before(
    sandbox: SandboxClient, make_ctx: Ctx, platform: str
) -> None:
    sent: list[SentPart] = []
    request = _thread_request(_account(sandbox, platform), sent)
    outcome = await PUBLISHERS[platform].publish(request, make_ctx(platform))

    assert isinstance(outcome, outcomes.Published), outcome
    records = sandbox.records(platform)
    assert [r["text"] for r in records] == [request.text, *(p.text for p in request.thread)]
    ids = [_id(platform, r) for r in records]
    assert [_parent(platform, r) for r in records] == [None, ids[0], ids[1]]
    assert [(p.index, p.platform_post_id) for p in sent] == list(enumerate(ids))
    assert outcome.platform_post_id == ids[0]
    if platform == "bluesky":  # a reply names the thread's root and its parent, by uri and cid
        assert [r["extra"].get("reply_root") for r in records] == [None, ids[0], ids[0]]
        assert all(p.ref for p in sent)


@pytest.mark.parametrize("platform", THREADS)
async def test_a_thread_resumes_after_the_parts_already_sent(
    sandbox: SandboxClient, make_ctx: Ctx, platform: str
) -> None:
    acct, ctx = _account(sandbox, platform), make_ctx(platform)
    first: list[SentPart] = []
    request = _thread_request(acct, first)
    sandbox.inject("unavailable", platform, step="reply")  # part 2 refused, nothing posted
    stopped = await PUBLISHERS[platform].publish(request, ctx)
    assert not isinstance(stopped, outcomes.Published)
    assert [p.index for p in first] == [0]

    later: list[SentPart] = []
    retry = replace(_thread_request(acct, later), attempt=2)
    retry = replace(retry, text=request.text, thread=request.thread, sent=tuple(first))
    resumed = await PUBLISHERS[platform].publish(retry, ctx)

    assert isinstance(resumed, outcomes.Published), resumed
    records = sandbox.records(platform)
    assert [r["text"] for r in records] == [request.text, *(p.text for p in request.thread)]
    assert [p.index for p in later] == [1, 2]
    assert _parent(platform, records[1]) == _id(platform, records[0])


@pytest.mark.parametrize("platform", COMMENTS)
async def test_the_first_comment_goes_on_the_published_post_once(
    sandbox: SandboxClient, make_ctx: Ctx, platform: str
) -> None:
    sent: list[SentPart] = []

    async def record(part: SentPart) -> None:
        sent.append(part)

    media = (sandbox.media_url("a.png"),) if platform == "instagram" else ()
    request = replace(
        publish_request(_account(sandbox, platform), unique("the post"), media),
        first_comment="#first #comment",
        record_part=record,
    )
    publisher, ctx = PUBLISHERS[platform], make_ctx(platform)
    outcome = await publisher.publish(request, ctx)

    assert isinstance(outcome, outcomes.Published), outcome
    post, comment = sandbox.records(platform)
    assert post["id"] == outcome.platform_post_id
    assert comment["text"] == "#first #comment"
    assert comment["extra"]["comment_on"] == post["id"]
    assert [(p.index, p.platform_post_id) for p in sent] == [(0, post["id"]), (1, comment["id"])]

    # The comment refused: the post stays, and a retry sends the comment alone.
    sandbox.inject("unavailable", platform, step="comment")
    refused: list[SentPart] = []

    async def record_refused(part: SentPart) -> None:
        refused.append(part)

    retry = replace(request, attempt=2, sent=tuple(sent[:1]), record_part=record_refused)
    stopped = await publisher.publish(retry, ctx)
    assert isinstance(stopped, outcomes.Transient | outcomes.Ambiguous), stopped
    assert "part 2 of 2" in stopped.reason and refused == []
    resumed = await publisher.publish(retry, ctx)
    assert isinstance(resumed, outcomes.Published), resumed
    assert resumed.platform_post_id == post["id"]
    assert [r["extra"].get("comment_on") for r in sandbox.records(platform)] == [
        None,
        post["id"],
        post["id"],
    ]
    assert [p.index for p in refused] == [1]
