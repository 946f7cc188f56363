"""Library media for the platforms that download an image from a URL (Facebook, Instagram,
Threads, Slack): a worker process signs a link under PUBLIC_BASE_URL at publish time, the
sandbox downloads it from the API server as the platform would, and receives the published
variant; the link needs no key, expires, and every bad one is the same 404. Where
PUBLIC_BASE_URL is not reachable from the internet, a post for a real platform is a 422 naming
it, and nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from postpilot.media import links
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import TEST_SECRET_KEY, ApiServer, api_server
from tests.media import pictures
from tests.media.uploads import refused, upload
from tests.waiting import wait_until
from tests.workers import delivery_counts, worker_env

META = {
    "facebook": ({"page_access_token": "{token}"}, {"page_id": "1029"}),
    "instagram": ({"access_token": "{token}"}, {"ig_user_id": "17841400000000001"}),
    "threads": ({"access_token": "{token}"}, {"threads_user_id": "me"}),
    "slack": ({"access_token": "{token}"}, {"channel": "C1H9RESGL"}),
}


async def meta_account(api: ApiServer, platform: str, token: str) -> str:
    credentials, options = META[platform]
    created = await api.client.post(
        "/api/accounts",
        json={
            "platform": platform,
            "handle": "me",
            "credentials": {k: v.format(token=token) for k, v in credentials.items()},
            "options": options,
            "verify": False,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_a_worker_delivers_a_library_image_by_signed_link_to_each_platform_that_fetches(
    any_db: Database, sandbox: SandboxClient, spawn: Any, tmp_path: Path
) -> None:
    media_dir = str(tmp_path / "media")
    async with api_server(any_db, sandbox, MEDIA_DIR=media_dir) as api:
        targets = [
            await meta_account(
                api, p, sandbox.issue_token(p, "owner", refresh=False)["access_token"]
            )
            for p in META
        ]
        # A PNG: Instagram takes JPEG only, so the published variant is a JPEG.
        uploaded = await upload(api, pictures.plain(120, 100), platforms=list(META))
        assert uploaded.status_code == 201, uploaded.text
        media = uploaded.json()
        assert media["variant"]["content_type"] == "image/jpeg"
        created = await api.client.post(
            "/api/posts",
            json={
                "text": "From the library",
                "media_ids": [media["id"]],
                "targets": targets,
                "scheduled_at": datetime.now(UTC).isoformat(),
            },
        )
        assert created.status_code == 201, created.text

        # The links are made by the worker, under its PUBLIC_BASE_URL: this API server.
        worker = spawn(worker_env(any_db, sandbox, MEDIA_DIR=media_dir, PUBLIC_BASE_URL=api.url))

        async def published() -> bool:
            assert worker.poll() is None, "the worker died"
            return await delivery_counts(any_db) == {"published": len(META)}

        await wait_until(published, timeout=60, what=lambda: delivery_counts(any_db))
        prefix = f"{api.url}/media/{media['id']}/"
        for platform in META:
            (record,) = sandbox.records(platform)
            (sent,) = record["media"]
            assert sent["url"].startswith(prefix), sent
            assert sent["size"] == media["variant"]["size_bytes"]
            assert sent["content_type"] == "image/jpeg"

        # The link itself: no key needed, the variant's type, cached no longer than it lives.
        link = sandbox.records("facebook")[0]["media"][0]["url"]
        async with httpx.AsyncClient() as anyone:
            answer = await anyone.get(link)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "image/jpeg"
            assert len(answer.content) == media["variant"]["size_bytes"]
            cache = answer.headers["cache-control"]
            assert cache.startswith("public, max-age=")
            max_age = int(cache.split("max-age=")[1].split(",")[0])
            assert 0 < max_age <= links.LIFETIME.total_seconds()
            # A platform that looks first gets the same headers and no body.
            looked = await anyone.head(link)
            assert looked.status_code == 200 and looked.content == b""
            assert looked.headers["content-type"] == "image/jpeg"
            assert looked.headers["content-length"] == str(media["variant"]["size_bytes"])

            token = link.removeprefix(prefix)
            expires, _, signature = token.partition(".")
            other = (await upload(api, pictures.plain(30, 30))).json()["id"]
            for bad in (
                f"{prefix}{expires}.{signature[:-2]}xx",  # tampered
                f"{prefix}{int(expires) + 60}.{signature}",  # a later expiry, same signature
                f"{api.url}/media/{other}/{token}",  # another media's id
                f"{api.url}/media/not-an-id/{token}",
                f"{api.url}/media/{media['id']}",  # no listing, no token
                f"{api.url}/media/",
            ):
                gone = await anyone.get(bad)
                assert gone.status_code == 404, bad
                assert set(gone.json()["error"]) == {"code", "message", "details"}

        # Past its expiry, the same link is refused.
        signer = links.MediaLinks(TEST_SECRET_KEY, api.url)
        old = signer.url(media["id"], datetime.now(UTC) - links.LIFETIME - timedelta(seconds=1))
        async with httpx.AsyncClient() as anyone:
            assert (await anyone.get(old)).status_code == 404


async def test_without_a_public_base_url_a_real_platform_is_refused_naming_it(
    sqlite_db: Database, tmp_path: Path
) -> None:
    async with api_server(sqlite_db, MEDIA_DIR=str(tmp_path / "media")) as api:
        page = await meta_account(api, "facebook", "token")
        media_id = (await upload(api, pictures.plain(40, 40))).json()["id"]
        body = {"text": "x", "media_ids": [media_id], "targets": [page]}
        message = refused(
            await api.client.post("/api/posts", json=body), 422, "content_not_allowed"
        )
        assert message == (
            "media_ids: facebook: downloads library media from PUBLIC_BASE_URL "
            "(http://127.0.0.1:8000), which it cannot reach (127.0.0.1 is not a public "
            "address); set PUBLIC_BASE_URL to this server's public origin, or give the image "
            "in media_urls"
        )
        assert (await api.client.get("/api/posts")).json()["items"] == []

    public = "https://postpilot.example.com"
    async with api_server(
        sqlite_db, MEDIA_DIR=str(tmp_path / "media"), PUBLIC_BASE_URL=public
    ) as api:
        page = await meta_account(api, "facebook", "token")  # another workspace: its own media
        media_id = (await upload(api, pictures.plain(40, 40))).json()["id"]
        body = {"text": "x", "media_ids": [media_id], "targets": [page]}
        created = await api.client.post("/api/posts", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["media_ids"] == [media_id]
