"""/api/media through the real app on a socket: uploads (file and URL), refusals that change
nothing, reading back, alt text, pagination, posts using media by id, delete while needed,
and workspaces kept apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server, mastodon_account, new_workspace
from tests.media import pictures
from tests.media.uploads import refused, upload


async def nothing_stored(api: ApiServer, media_dir: Path) -> None:
    assert (await api.client.get("/api/media")).json() == {"items": [], "next_cursor": None}
    assert not media_dir.exists() or not any(media_dir.iterdir())


async def test_upload_read_back_and_alt_text(sqlite_db: Database, tmp_path: Path) -> None:
    media_dir = tmp_path / "media"
    async with api_server(sqlite_db, MEDIA_DIR=str(media_dir)) as api:
        data = pictures.with_orientation(90, 60)
        created = await upload(api, data, name="../../cat.jpg", platforms=["bluesky,x"])
        assert created.status_code == 201, created.text
        item = created.json()
        assert item["filename"] == "cat.jpg"
        assert item["content_type"] == "image/jpeg" and item["size_bytes"] == len(data)
        assert item["platforms"] == ["bluesky", "x"]
        assert item["variant"]["width"] == 60 and item["variant"]["height"] == 90
        assert item["alt_text"] is None

        # Answers name the versioned paths, never the deprecated aliases.
        assert item["content_url"] == f"/api/v1/media/{item['id']}/content"
        assert item["thumbnail_url"] == f"/api/v1/media/{item['id']}/thumbnail"
        original = await api.client.get(item["content_url"])
        assert original.content == data and original.headers["content-type"] == "image/jpeg"
        published = await api.client.get(item["content_url"], params={"version": "published"})
        assert pictures.size_of(published.content) == (60, 90)
        assert pictures.exif_of(published.content) == {}
        thumbnail = await api.client.get(item["thumbnail_url"])
        assert thumbnail.headers["content-type"] == "image/jpeg"
        assert max(pictures.size_of(thumbnail.content)) <= 320

        patched = await api.client.patch(
            f"/api/media/{item['id']}", json={"alt_text": "A blue square"}
        )
        assert patched.json()["alt_text"] == "A blue square"
        assert (await api.client.get(f"/api/media/{item['id']}")).json()["alt_text"] == (
            "A blue square"
        )


async def test_list_pages_with_a_cursor(sqlite_db: Database, tmp_path: Path) -> None:
    async with api_server(sqlite_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        ids = [(await upload(api, pictures.plain(10 + i, 10))).json()["id"] for i in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await api.client.get("/api/media", params=params)).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[::-1], "newest first, each once"
        bad = await api.client.get("/api/media", params={"cursor": "not-a-cursor"})
        refused(bad, 400, "invalid_cursor")


async def test_refusals_change_nothing(
    sqlite_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    media_dir = tmp_path / "media"
    async with api_server(
        sqlite_db, sandbox, MEDIA_DIR=str(media_dir), MEDIA_MAX_UPLOAD_BYTES=2_000_000
    ) as api:
        message = refused(await upload(api, b"%PDF-1.4 a document"), 422, "media_not_image")
        assert "not a JPEG, PNG, GIF or WebP" in message or "JPEG" in message
        big = pictures.noisy(700, 700)
        message = refused(await upload(api, big, platforms=["bluesky"]), 422, "media_not_allowed")
        assert message == f"bluesky: the image is {len(big)} bytes, the limit is 1000000"
        huge = pictures.noisy(820, 820)  # just over MEDIA_MAX_UPLOAD_BYTES
        refused(await upload(api, huge), 413, "media_too_large")
        refused(await upload(api, pictures.plain(), platforms=["myspace"]), 422, "invalid_request")
        refused(
            await upload(api, pictures.plain(), alt_text="nul \x00 here"), 422, "invalid_request"
        )
        for url in ("http://127.0.0.1:9/private.png", "http://10.0.0.1/a.png", "media:abc"):
            response = await api.client.post("/api/media/from-url", json={"url": url})
            refused(response, 422, "media_url_unusable")
        not_image = await api.client.post(
            "/api/media/from-url", json={"url": f"{sandbox.url}/_sandbox/records"}
        )
        refused(not_image, 422, "media_url_unusable")
        await nothing_stored(api, media_dir)

        fetched = await api.client.post(
            "/api/media/from-url",
            json={"url": sandbox.media_url("hello.png"), "alt_text": "hello"},
        )
        assert fetched.status_code == 201, fetched.text
        assert fetched.json()["filename"] == "hello.png"


async def test_posts_use_media_by_id_and_delete_waits_for_them(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with api_server(sqlite_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        account = await mastodon_account(api)
        media_id = (await upload(api, pictures.plain())).json()["id"]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        created = await api.client.post(
            "/api/posts",
            json={
                "text": "with media",
                "media_ids": [media_id],
                "targets": [account],
                "scheduled_at": later,
            },
        )
        assert created.status_code == 201, created.text
        post = created.json()
        assert post["media_ids"] == [media_id] and post["media_urls"] == []

        blocked = await api.client.delete(f"/api/media/{media_id}")
        message = refused(blocked, 409, "media_in_use")
        assert post["id"] in message
        assert blocked.json()["error"]["details"][0]["post_id"] == post["id"]
        assert (await api.client.get(f"/api/media/{media_id}")).status_code == 200

        # The same media may go into another post; a media:... URL may not be smuggled in.
        again = await api.client.post(
            "/api/posts",
            json={
                "text": "reuse",
                "media_ids": [media_id],
                "targets": [account],
                "scheduled_at": later,
            },
        )
        assert again.status_code == 201
        smuggled = await api.client.post(
            "/api/posts",
            json={"text": "x", "media_urls": [f"media:{media_id}"], "targets": [account]},
        )
        refused(smuggled, 422, "content_not_allowed")

        edited = await api.client.patch(f"/api/posts/{again.json()['id']}", json={"media_ids": []})
        assert edited.json()["media_ids"] == []
        await api.client.post(f"/api/posts/{post['id']}/cancel")
        deleted = await api.client.delete(f"/api/media/{media_id}")
        assert deleted.status_code == 204, deleted.text
        refused(await api.client.get(f"/api/media/{media_id}"), 404, "not_found")
        assert (await api.client.get(f"/api/posts/{post['id']}")).json()["media_ids"] == [
            media_id
        ], "the cancelled post keeps what it said"


async def test_another_workspace_cannot_see_or_use_the_media(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with api_server(sqlite_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        media_id = (await upload(api, pictures.plain())).json()["id"]
        _, key = await new_workspace(sqlite_db, "other")
        other = api.client_for(key)
        theirs = await other.post(
            "/api/accounts",
            json={
                "platform": "mastodon",
                "handle": "@them",
                "base_url": "https://m.example",
                "credentials": {"access_token": "t"},
                "verify": False,
            },
        )
        assert (await other.get("/api/media")).json()["items"] == []
        for path in ("", "/content", "/thumbnail"):
            refused(await other.get(f"/api/media/{media_id}{path}"), 404, "not_found")
        refused(
            await other.patch(f"/api/media/{media_id}", json={"alt_text": "x"}), 404, "not_found"
        )
        refused(await other.delete(f"/api/media/{media_id}"), 404, "not_found")
        used = await other.post(
            "/api/posts",
            json={"text": "x", "media_ids": [media_id], "targets": [theirs.json()["id"]]},
        )
        assert refused(used, 422, "media_not_found") == (
            f"media_ids: no media {media_id} in this workspace"
        )
        assert (await api.client.get(f"/api/media/{media_id}")).json()["alt_text"] is None


async def test_a_delete_racing_a_new_post_never_leaves_the_post_without_its_media(
    pg_db: Database, tmp_path: Path
) -> None:
    """On PostgreSQL the post's link share-locks the media and the delete locks it: one of
    them goes first, and the other sees what it did."""
    async with api_server(pg_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        account = await mastodon_account(api)
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        for _ in range(8):
            media_id = (await upload(api, pictures.plain())).json()["id"]
            body = {
                "text": "x",
                "media_ids": [media_id],
                "targets": [account],
                "scheduled_at": later,
            }
            created, deleted = await asyncio.gather(
                api.client.post("/api/posts", json=body),
                api.client.delete(f"/api/media/{media_id}"),
            )
            if created.status_code == 201:
                assert deleted.status_code == 409, "the post went first: the delete sees it"
                assert (await api.client.get(f"/api/media/{media_id}")).status_code == 200
                content = await api.client.get(f"/api/media/{media_id}/content")
                assert content.status_code == 200
            else:
                assert deleted.status_code == 204, deleted.text
                refused(created, 422, "media_not_found")


async def test_a_post_checks_its_media_against_the_targets_platforms(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """Checked at upload for the platforms chosen then: a post to another platform is checked
    again, and refused (changing nothing) when the image does not suit it."""
    async with api_server(sqlite_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        bluesky = await api.client.post(
            "/api/accounts",
            json={
                "platform": "bluesky",
                "handle": "me.bsky.social",
                "credentials": {"did": "did:plc:me", "access_jwt": "jwt"},
                "verify": False,
            },
        )
        assert bluesky.status_code == 201, bluesky.text
        big = (await upload(api, pictures.noisy(700, 700), platforms=["mastodon"])).json()
        body = {"text": "x", "media_ids": [big["id"]], "targets": [bluesky.json()["id"]]}
        message = refused(
            await api.client.post("/api/posts", json=body), 422, "content_not_allowed"
        )
        size = big["variant"]["size_bytes"]
        assert message == (
            f"media_ids: {big['id']}: bluesky: the image is {size} bytes, the limit is 1000000"
        )
        assert (await api.client.get("/api/posts")).json()["items"] == []
