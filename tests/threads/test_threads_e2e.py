"""A thread to Mastodon, Bluesky and X travels from the API through a pass to the sandbox: each part
replies to the one before, and a part that fails is retried without sending again those before
it."""

from __future__ import annotations

from typing import Any

import pytest

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.publishers.conftest import unique

ENDPOINTS = ["/api/cron/scheduler", "/api/cron/scheduler-optimized"]
PLATFORMS = ["mastodon", "bluesky", "x"]
THREAD = {"text": "1/3 the post", "thread": [{"text": "2/3 a reply"}, {"text": "3/3 the end"}]}


async def _account(api: ApiServer, sandbox: SandboxClient, platform: str) -> str:
    if platform == "mastodon":
        return await mastodon_account(api, sandbox)
    if platform == "x":
        account = {"handle": "@tester", "credentials": {"access_token": "x-token"}}
    else:
        did = "did:plc:threadtester"
        token = sandbox.issue_token("bluesky", subject=did, refresh=False)["access_token"]
        account = {
            "handle": "tester.bsky.social",
            "credentials": {"did": did, "access_jwt": token},
        }
    created = await api.client.post(
        "/api/accounts", json={"platform": platform, **account, "verify": False}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _thread_post(api: ApiServer, account_id: str) -> dict[str, Any]:
    created = await api.client.post("/api/posts", json={**THREAD, "targets": [account_id]})
    assert created.status_code == 201, created.text
    post: dict[str, Any] = created.json()
    assert [p["text"] for p in post["thread"]] == ["2/3 a reply", "3/3 the end"]
    return post


def _assert_chain(platform: str, records: list[dict[str, Any]]) -> None:
    assert [r["text"] for r in records] == ["1/3 the post", "2/3 a reply", "3/3 the end"]
    if platform == "mastodon":
        assert "in_reply_to_id" not in records[0]["extra"]
        assert records[1]["extra"]["in_reply_to_id"] == records[0]["id"]
        assert records[2]["extra"]["in_reply_to_id"] == records[1]["id"]
        return
    if platform == "x":
        assert "in_reply_to_tweet_id" not in records[0]["extra"]
        assert [r["extra"]["in_reply_to_tweet_id"] for r in records[1:]] == [
            records[0]["id"],
            records[1]["id"],
        ]
        return
    uris = [r["extra"]["uri"] for r in records]
    assert "reply_root" not in records[0]["extra"]
    assert [r["extra"]["reply_root"] for r in records[1:]] == [uris[0], uris[0]]
    assert [r["extra"]["reply_parent"] for r in records[1:]] == uris[:2]


def _ids(platform: str, records: list[dict[str, Any]]) -> list[str]:
    """The ids the store keeps for what the sandbox recorded (Bluesky: the record's uri)."""
    return [r["extra"]["uri"] if platform == "bluesky" else r["id"] for r in records]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_thread_is_published_in_order_as_a_reply_chain(
    any_db: Database, sandbox: SandboxClient, endpoint: str, platform: str
) -> None:
    async with api_server(any_db, sandbox) as api:
        post = await _thread_post(api, await _account(api, sandbox, platform))
        summary = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert summary["published"] == 1, summary

        records = sandbox.records(platform)
        _assert_chain(platform, records)
        shown = (await api.client.get(f"/api/posts/{post['id']}")).json()
        (target,) = shown["targets"]
        assert target["status"] == "published"
        ids = _ids(platform, records)
        assert target["platform_post_id"] == ids[0]  # the thread is its first post
        assert [(p["index"], p["platform_post_id"]) for p in target["parts"]] == list(
            enumerate(ids)
        )
        assert all(p["status"] == "sent" and p["url"] for p in target["parts"])


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_failed_part_is_retried_without_sending_the_parts_before_it(
    sqlite_db: Database, sandbox: SandboxClient, endpoint: str, platform: str
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        post = await _thread_post(api, await _account(api, sandbox, platform))
        sandbox.inject("unavailable", platform, step="reply")  # the first reply: part 2

        # With no retry delay a pass may retry the delivery itself: run passes until it is out.
        published = 0
        for _ in range(3):
            summary = await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})
            published += summary.json()["published"]
            if published:
                break
        assert published == 1
        activity = (await api.client.get(f"/api/posts/{post['id']}/activity")).json()
        retried = [a for a in activity if "part 2 of 3" in (a["detail"] or "")]
        assert retried and retried[0]["event"] == "retry_scheduled", activity
        (target,) = (await api.client.get(f"/api/posts/{post['id']}")).json()["targets"]
        assert target["status"] == "published"
        assert [p["index"] for p in target["parts"]] == [0, 1, 2]
        _assert_chain(platform, sandbox.records(platform))  # the retry began at part 2
        create = {"mastodon": "/statuses", "bluesky": "createRecord", "x": "/2/tweets"}[platform]
        posted = [r for r in sandbox.requests(platform) if r["path"].endswith(create)]
        assert len(posted) == 4  # part 1, part 2 refused, part 2, part 3


async def test_a_thread_is_refused_for_a_platform_without_threads_and_per_part_limits(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        too_long = {"text": "fine", "thread": [{"text": "ok"}, {"text": "x" * 501}]}
        refused = await api.client.post("/api/posts", json={**too_long, "targets": [account_id]})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "content_not_allowed"
        assert "thread[1]: mastodon: text is 501 characters" in error["message"]

        comment = {"text": "fine", "first_comment": "first!", "targets": [account_id]}
        refused = await api.client.post("/api/posts", json=comment)
        assert refused.status_code == 422
        assert "cannot take a first comment" in refused.json()["error"]["message"]

        assert (await api.client.get("/api/posts")).json()["items"] == []  # nothing was made


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_part_that_may_have_gone_out_on_x_makes_the_delivery_unknown(
    sqlite_db: Database, sandbox: SandboxClient, endpoint: str
) -> None:
    """X has no idempotency key: a part whose request may have reached it is not sent again
    blindly, and reading back the post alone cannot settle a thread."""
    async with api_server(sqlite_db, sandbox) as api:
        post = await _thread_post(api, await _account(api, sandbox, "x"))
        sandbox.inject("server_error", "x", step="reply")  # a 500 on part 2: it may have posted
        summary = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert summary["published"] == 0, summary
        again = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert again["claimed"] == 0, again

        assert [r["text"] for r in sandbox.records("x")] == ["1/3 the post"]
        (target,) = (await api.client.get(f"/api/posts/{post['id']}")).json()["targets"]
        assert target["status"] == "unknown"
        assert "part 2 of 3" in target["last_error"]
        assert [p["index"] for p in target["parts"]] == [0]


async def _commenting_account(api: ApiServer, sandbox: SandboxClient, platform: str) -> str:
    token = sandbox.issue_token(platform, f"{platform}-owner", refresh=False)["access_token"]
    account: dict[str, Any] = {
        "instagram": {
            "credentials": {"access_token": token},
            "options": {"ig_user_id": "17841400000000001"},
        },
        "linkedin": {
            "credentials": {"access_token": token},
            "options": {"author_urn": "urn:li:person:me"},
        },
        "facebook": {"credentials": {"page_access_token": token}, "options": {"page_id": "1029"}},
    }[platform]
    created = await api.client.post(
        "/api/accounts",
        json={"platform": platform, "handle": "me", **account, "verify": False},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_first_comment_is_posted_once_after_the_post(
    any_db: Database, sandbox: SandboxClient, endpoint: str
) -> None:
    async with api_server(any_db, sandbox) as api:
        targets = [
            await _commenting_account(api, sandbox, p)
            for p in ("instagram", "linkedin", "facebook")
        ]
        created = await api.client.post(
            "/api/posts",
            json={
                "text": unique("New release"),  # LinkedIn refuses a repeated text
                "media_urls": [sandbox.media_url("release.png")],
                "first_comment": "Notes: https://example.com/notes",
                "targets": targets,
            },
        )
        assert created.status_code == 201, created.text
        post = created.json()
        assert post["first_comment"] == "Notes: https://example.com/notes"
        # Facebook's comment answered with an error after it may have been taken: no key makes
        # a repeat safe, so the delivery waits for a person with its post recorded.
        sandbox.inject("unavailable", "facebook", step="comment")
        summary = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert summary["published"] == 2, summary

        shown = (await api.client.get(f"/api/posts/{post['id']}")).json()
        by_platform = {t["platform"]: t for t in shown["targets"]}
        waiting = by_platform.pop("facebook")
        assert waiting["status"] == "unknown"
        assert "part 2 of 2" in waiting["last_error"]
        assert [p["index"] for p in waiting["parts"]] == [0]
        assert "comment_on" not in sandbox.records("facebook")[0]["extra"]

        # The person saw no comment on the Page: retried, only the comment goes out.
        resolved = await api.client.post(
            f"/api/deliveries/{waiting['id']}/resolve", json={"resolution": "retry"}
        )
        assert resolved.status_code == 200, resolved.text
        again = (await api.client.post(endpoint, headers=api.cron(), json={"limit": 10})).json()
        assert again["published"] == 1, again

        shown = (await api.client.get(f"/api/posts/{post['id']}")).json()
        for target in shown["targets"]:
            records = sandbox.records(target["platform"])
            posts = [r for r in records if "comment_on" not in r["extra"]]
            comments = [r for r in records if "comment_on" in r["extra"]]
            assert len(posts) == 1 and len(comments) == 1, records
            assert comments[0]["text"] == "Notes: https://example.com/notes"
            assert comments[0]["extra"]["comment_on"] == posts[0]["id"]
            assert target["status"] == "published"
            assert target["platform_post_id"] == posts[0]["id"]
            assert [(p["index"], p["platform_post_id"]) for p in target["parts"]] == [
                (0, posts[0]["id"]),
                (1, comments[0]["id"]),
            ]


async def test_a_token_renewed_midway_resumes_after_the_parts_sent_with_the_old_one(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        tokens = sandbox.issue_token("x", "thread-author")
        created = await api.client.post(
            "/api/accounts",
            json={
                "platform": "x",
                "handle": "@author",
                "credentials": {
                    "access_token": tokens["access_token"],
                    "refresh_token": tokens["refresh_token"],
                    "client_id": "postpilot-app",
                },
                "verify": False,
            },
        )
        assert created.status_code == 201, created.text
        await _thread_post(api, str(created.json()["id"]))
        sandbox.inject("expired_token", "x", step="reply")  # part 2: renewed, then sent

        summary = await api.client.post(ENDPOINTS[1], headers=api.cron(), json={"limit": 10})
        assert summary.json()["published"] == 1, summary.text
        _assert_chain("x", sandbox.records("x"))  # part 1 once: not again with the new token
        renewals = [r for r in sandbox.requests("x") if r["path"].endswith("/oauth2/token")]
        assert len(renewals) == 1


async def test_a_thread_part_names_its_library_media_problem_and_changes_nothing(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        account_id = await mastodon_account(api, sandbox)
        body = {
            "text": "post",
            "thread": [{"text": "ok"}, {"text": "with media", "media_ids": ["nope"]}],
            "targets": [account_id],
        }
        refused = await api.client.post("/api/posts", json=body)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "media_not_found"
        assert error["message"] == "thread[1].media_ids: no media nope in this workspace"
        extra = await api.client.post(
            "/api/posts", json={**body, "thread": [{"text": "x", "colour": "red"}]}
        )
        assert extra.status_code == 422
        assert (await api.client.get("/api/posts")).json()["items"] == []
