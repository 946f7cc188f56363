"""Reading a platform back to settle a delivery that may have been published: against the
sandbox process (what each platform's listing really says after a publish, a lost answer, no
send), and with a scripted transport for what the sandbox does not do (cut listings, errors)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from postpilot.core import outcomes, readback
from postpilot.publishers import listing
from postpilot.publishers.base import (
    AccountContext,
    Lookup,
    PublishContext,
    Publisher,
    PublishRequest,
    finder,
)
from postpilot.publishers.discord import DiscordPublisher
from postpilot.publishers.facebook import FacebookPublisher
from postpilot.publishers.instagram import InstagramPublisher
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.registry import PUBLISHERS
from postpilot.publishers.slack import SlackPublisher
from postpilot.publishers.threads import ThreadsPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique, utcnow

Ctx = Callable[[str], PublishContext]
SKEW = timedelta(minutes=5)


def accounts(sandbox: SandboxClient) -> dict[str, AccountContext]:
    def token(platform: str) -> str:
        return str(sandbox.issue_token(platform, "reader", refresh=False)["access_token"])

    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    page = str(uuid.uuid4().int % 10**9)
    return {
        "slack": account("slack", {"access_token": token("slack")}, {"channel": channel}),
        "facebook": account(
            "facebook", {"page_access_token": token("facebook")}, {"page_id": page}
        ),
        "instagram": account(
            "instagram", {"access_token": token("instagram")}, {"ig_user_id": f"ig{page}"}
        ),
        "threads": account(
            "threads", {"access_token": token("threads")}, {"threads_user_id": f"th{page}"}
        ),
        "discord": account(
            "discord",
            {"webhook_id": f"9{page}", "webhook_token": "hook-secret", "bot_token": "bot-secret"},
            {"channel_id": DISCORD_CHANNEL, "guild_id": "1"},
        ),
    }


PLATFORMS = ("slack", "facebook", "instagram", "threads", "discord")
DISCORD_CHANNEL = "200000000000000001"  # the sandbox's one channel


def request_for(sandbox: SandboxClient, acct: AccountContext, text: str) -> PublishRequest:
    media = (sandbox.media_url("r.png"),) if acct.platform == "instagram" else ()
    return publish_request(acct, text, media)


async def look(
    publisher: Publisher, request: PublishRequest, ctx: PublishContext, **kwargs: Any
) -> readback.ReadBack:
    found = finder(publisher)
    assert found is not None
    lookup = Lookup(request=request, since=kwargs.pop("since", utcnow() - SKEW), **kwargs)
    return await found.find_published(lookup, ctx)


def test_only_platforms_that_let_us_look_claim_to() -> None:
    readers = {name for name, publisher in PUBLISHERS.items() if finder(publisher)}
    assert readers == {"slack", "facebook", "instagram", "threads", "discord"}


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_published_post_is_found_with_the_id_publish_gave(
    platform: str, sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx = PUBLISHERS[platform], make_ctx(platform)
    acct = accounts(sandbox)[platform]
    other = await publisher.publish(request_for(sandbox, acct, unique("another post")), ctx)
    request = request_for(sandbox, acct, unique("ours"))
    published = await publisher.publish(request, ctx)
    assert isinstance(other, outcomes.Published) and isinstance(published, outcomes.Published)
    answer = await look(publisher, request, ctx)
    assert isinstance(answer, readback.Found), answer
    assert answer.platform_post_id == published.platform_post_id
    assert answer.url or platform == "slack"


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_post_never_sent_is_not_found(
    platform: str, sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx = PUBLISHERS[platform], make_ctx(platform)
    acct = accounts(sandbox)[platform]
    await publisher.publish(request_for(sandbox, acct, unique("another post")), ctx)
    answer = await look(publisher, request_for(sandbox, acct, unique("never sent")), ctx)
    assert isinstance(answer, readback.NotFound), answer


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_post_whose_answer_was_lost_is_found(
    platform: str, sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx = PUBLISHERS[platform], make_ctx(platform)
    acct = accounts(sandbox)[platform]
    sandbox.inject("timeout_after_commit", platform, hold_seconds=HOLD, step="publish")
    request = request_for(sandbox, acct, unique("lost answer"))
    assert isinstance(await publisher.publish(request, ctx), outcomes.Ambiguous)
    answer = await look(publisher, request, ctx)
    assert isinstance(answer, readback.Found), answer
    assert answer.platform_post_id.endswith(sandbox.records(platform)[-1]["id"])


async def test_a_listing_read_page_by_page_still_finds_the_oldest(
    sandbox: SandboxClient, make_ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "PAGE_SIZE", 1)
    publisher, ctx = FacebookPublisher(), make_ctx("facebook")
    acct = accounts(sandbox)["facebook"]
    request = request_for(sandbox, acct, unique("first"))
    first = await publisher.publish(request, ctx)
    for _ in range(3):
        await publisher.publish(request_for(sandbox, acct, unique("later")), ctx)
    answer = await look(publisher, request, ctx)
    assert isinstance(first, outcomes.Published) and isinstance(answer, readback.Found)
    assert answer.platform_post_id == first.platform_post_id
    monkeypatch.setattr(listing, "MAX_PAGES", 2)
    cut = await look(publisher, request, ctx)
    assert isinstance(cut, readback.CannotTell) and "does not reach back" in cut.reason


async def test_slack_message_with_our_text_but_no_marker_cannot_be_told_apart(
    sandbox: SandboxClient, make_ctx: Ctx, http: httpx.AsyncClient
) -> None:
    acct, ctx = accounts(sandbox)["slack"], make_ctx("slack")
    text = unique("by hand")
    # A person (or a version before markers) posted the same text.
    await http.post(
        f"{sandbox.platform_url('slack')}/api/chat.postMessage",
        json={"channel": acct.options["channel"], "text": text},
        headers={"Authorization": f"Bearer {acct.credentials['access_token']}"},
    )
    answer = await look(SlackPublisher(), publish_request(acct, text), ctx)
    assert isinstance(answer, readback.CannotTell) and "without our marker" in answer.reason


async def test_a_post_another_delivery_holds_is_not_taken_for_ours(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx = ThreadsPublisher(), make_ctx("threads")
    acct = accounts(sandbox)["threads"]
    request = publish_request(acct, unique("same text"))
    held = await publisher.publish(request, ctx)
    assert isinstance(held, outcomes.Published)
    answer = await look(publisher, request, ctx, taken=frozenset({held.platform_post_id}))
    assert isinstance(answer, readback.NotFound)


# --- a scripted platform, for answers the sandbox does not give ---------------------------


def scripted(handler: Callable[[httpx.Request], httpx.Response]) -> PublishContext:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    media = MediaFetcher(http, max_bytes=1024, allowed_hosts=frozenset(), timeout_seconds=1)
    return PublishContext(http=http, media=media, now=utcnow)


def slack_request(text: str = "hello") -> PublishRequest:
    return publish_request(account("slack", {"access_token": "xoxb"}, {"channel": "C1"}), text)


async def test_slack_history_that_never_ends_is_not_read_as_absent() -> None:
    pages: list[str] = []

    def endless(request: httpx.Request) -> httpx.Response:
        pages.append(request.url.params.get("cursor", ""))
        messages = [{"type": "message", "text": "other", "ts": "1900000000.000100"}]
        return httpx.Response(
            200,
            json={
                "ok": True,
                "messages": messages,
                "has_more": True,
                "response_metadata": {"next_cursor": f"c{len(pages)}"},
            },
        )

    answer = await look(SlackPublisher(), slack_request(), scripted(endless))
    assert isinstance(answer, readback.CannotTell)
    assert len(pages) == 10 and pages[1] == "c1"


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, json={"ok": False, "error": "missing_scope"}), "missing_scope"),
        (httpx.Response(429, json={"ok": False, "error": "ratelimited"}), "ratelimited"),
        (httpx.Response(200, json={"ok": True, "messages": [], "has_more": True}), "no cursor"),
    ],
)
async def test_slack_errors_are_cannot_tell(response: httpx.Response, reason: str) -> None:
    answer = await look(SlackPublisher(), slack_request(), scripted(lambda _r: response))
    assert isinstance(answer, readback.CannotTell) and reason in answer.reason


async def test_slack_marker_on_the_second_page_is_found() -> None:
    request = slack_request()

    def history(http_request: httpx.Request) -> httpx.Response:
        if not http_request.url.params.get("cursor"):
            page = {"messages": [], "has_more": True, "response_metadata": {"next_cursor": "p2"}}
        else:
            marker = {
                "event_type": "postpilot_delivery",
                "event_payload": {"delivery_id": request.delivery_id},
            }
            message = {"text": "hello", "ts": f"{utcnow().timestamp():.6f}", "metadata": marker}
            page = {"messages": [message], "has_more": False}
        return httpx.Response(200, json={"ok": True, **page})

    answer = await look(SlackPublisher(), request, scripted(history))
    assert isinstance(answer, readback.Found) and answer.platform_post_id.startswith("C1:")


def threads_request(text: str = "hello") -> PublishRequest:
    acct = account("threads", {"access_token": "t"}, {"threads_user_id": "42"})
    return publish_request(acct, text)


def graph_page(*posts: dict[str, Any], next_cursor: str | None = None) -> httpx.Response:
    paging: dict[str, Any] = {"cursors": {"after": next_cursor or "end"}}
    if next_cursor:
        paging["next"] = f"https://graph.threads.net/v1.0/42/threads?after={next_cursor}"
    return httpx.Response(200, json={"data": list(posts), "paging": paging})


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (graph_page(), readback.NotFound),
        (
            graph_page({"id": "1", "text": "hello", "timestamp": "2999-01-01T00:00:00+0000"}),
            readback.Found,
        ),
        (
            graph_page(
                {"id": "1", "text": "hello", "timestamp": "2999-01-01T00:00:00+0000"},
                {"id": "2", "text": "hello", "timestamp": "2999-01-01T00:00:01+0000"},
            ),
            readback.CannotTell,
        ),
        (
            graph_page({"id": "1", "text": "hello", "timestamp": "2000-01-01T00:00:00+0000"}),
            readback.NotFound,
        ),
        (httpx.Response(500, json={"error": {"message": "boom", "code": 2}}), readback.CannotTell),
        (httpx.Response(200, json={"data": [], "paging": {"next": "x"}}), readback.CannotTell),
        (httpx.Response(200, json={"nothing": True}), readback.CannotTell),
    ],
)
async def test_graph_listing_answers(response: httpx.Response, expected: type) -> None:
    answer = await look(ThreadsPublisher(), threads_request(), scripted(lambda _r: response))
    assert isinstance(answer, expected), answer


async def test_graph_listing_asks_for_the_next_page_with_its_own_url() -> None:
    asked: list[httpx.URL] = []

    def pages(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        if "after" not in request.url.params:
            return graph_page({"id": "9", "text": "other"}, next_cursor="p2")
        return graph_page({"id": "1", "text": "hello", "timestamp": "2999-01-01T00:00:00+0000"})

    answer = await look(InstagramPublisher(), threads_request(), scripted(pages))
    assert isinstance(answer, readback.CannotTell)  # no ig_user_id: nothing asked
    answer = await look(ThreadsPublisher(), threads_request(), scripted(pages))
    assert isinstance(answer, readback.Found) and answer.platform_post_id == "1"
    assert [u.host for u in asked] == ["graph.threads.net"] * 2
    assert asked[1].params["after"] == "p2" and asked[1].path == asked[0].path


async def test_a_transport_failure_cannot_tell() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for publisher, request in (
        (ThreadsPublisher(), threads_request()),
        (SlackPublisher(), slack_request()),
    ):
        answer = await look(publisher, request, scripted(down))
        assert isinstance(answer, readback.CannotTell) and "ConnectError" in answer.reason


async def test_facebook_reads_the_page_s_published_posts_and_links_what_it_finds() -> None:
    asked: list[httpx.URL] = []

    def posts(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        found = {"id": "77_1", "message": "hello", "created_time": "2999-01-01T00:00:00+0000"}
        return httpx.Response(200, json={"data": [found], "paging": {"cursors": {}}})

    acct = account("facebook", {"page_access_token": "p"}, {"page_id": "77"})
    answer = await look(FacebookPublisher(), publish_request(acct, "hello"), scripted(posts))
    assert answer == readback.Found(
        "77_1",
        "https://www.facebook.com/77_1",
        "facebook Page 77 published posts: 77_1 has the exact text",
    )
    [url] = asked
    assert url.path == "/v21.0/77/published_posts" and url.params["fields"].startswith("id,message")


async def test_instagram_matches_the_caption_and_keeps_the_permalink() -> None:
    def media(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v21.0/17841/media"
        item = {
            "id": "m1",
            "caption": "hello",
            "timestamp": "2999-01-01T00:00:00+0000",
            "permalink": "https://www.instagram.com/p/abc/",
        }
        return httpx.Response(200, json={"data": [item]})

    acct = account("instagram", {"access_token": "t"}, {"ig_user_id": "17841"})
    answer = await look(InstagramPublisher(), publish_request(acct, "hello"), scripted(media))
    assert isinstance(answer, readback.Found)
    assert (answer.platform_post_id, answer.url) == ("m1", "https://www.instagram.com/p/abc/")


def discord_request(**credentials: str) -> PublishRequest:
    creds = {"webhook_id": "55", "webhook_token": "t", "bot_token": "b", **credentials}
    acct = account("discord", creds, {"channel_id": "7"})
    return publish_request(acct, "hello")


def discord_message(message_id: int, webhook: str = "55", content: str = "hello") -> dict[str, Any]:
    at = utcnow().isoformat()
    return {"id": str(message_id), "webhook_id": webhook, "content": content, "timestamp": at}


async def test_discord_without_a_bot_token_cannot_tell() -> None:
    request = discord_request(bot_token="")
    answer = await look(DiscordPublisher(), request, scripted(lambda _r: httpx.Response(500)))
    assert isinstance(answer, readback.CannotTell) and "bot token" in answer.reason


async def test_discord_pages_forward_and_only_our_webhook_s_message_counts() -> None:
    asked: list[httpx.Request] = []

    def messages(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if len(asked) == 1:  # a full page: someone else's messages, one with our text
            page = [discord_message(1000 + i, webhook="66") for i in range(100)]
            return httpx.Response(200, json=list(reversed(page)))
        return httpx.Response(200, json=[discord_message(2000), discord_message(1999, "66")])

    answer = await look(DiscordPublisher(), discord_request(), scripted(messages))
    assert isinstance(answer, readback.Found) and answer.platform_post_id == "2000"
    assert asked[0].headers["authorization"] == "Bot b"
    assert asked[0].url.path == "/api/v10/channels/7/messages"
    assert asked[1].url.params["after"] == "1099"


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (lambda: httpx.Response(200, json=[]), readback.NotFound),
        (
            lambda: httpx.Response(401, json={"message": "401: Unauthorized", "code": 0}),
            readback.CannotTell,
        ),
        (lambda: httpx.Response(200, json={"not": "a list"}), readback.CannotTell),
        (lambda: httpx.Response(200, json=[{"id": "x"}]), readback.CannotTell),
        # Built when the test runs: the messages must be newer than the delivery's window.
        (
            lambda: httpx.Response(200, json=[discord_message(5), discord_message(6)]),
            readback.CannotTell,
        ),
    ],
)
async def test_discord_answers(response: Callable[[], httpx.Response], expected: type) -> None:
    answer = await look(DiscordPublisher(), discord_request(), scripted(lambda _r: response()))
    assert isinstance(answer, expected), answer


async def test_discord_listing_too_long_to_read_cannot_tell() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["after"]) + 1
        page = [discord_message(start + i, webhook="66") for i in range(100)]
        return httpx.Response(200, json=page)

    answer = await look(DiscordPublisher(), discord_request(), scripted(endless))
    assert isinstance(answer, readback.CannotTell) and "does not reach back" in answer.reason
