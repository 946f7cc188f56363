"""Per-account variants through the API: kept and shown, checked against the account's
platform (a 422 names the account), and refused for an account the post does not target."""

from __future__ import annotations

from pathlib import Path

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import api_server, mastodon_account
from tests.media import pictures
from tests.media.uploads import upload


async def test_a_variant_is_kept_edited_and_checked(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        one = await mastodon_account(api, sandbox, "@one")
        two = await mastodon_account(api, sandbox, "@two")
        body = {
            "text": "plain",
            "overrides": {"mastodon": "for mastodon"},
            "account_overrides": {one: {"text": "for @one"}},
            "targets": [one, two],
            "scheduled_at": "2030-01-01T09:00:00+00:00",
        }
        created = await api.client.post("/api/posts", json=body)
        assert created.status_code == 201, created.text
        post = created.json()
        assert post["account_overrides"] == {one: {"text": "for @one", "media_ids": None}}

        too_long = {**body, "account_overrides": {two: {"text": "x" * 501}}}
        refused = await api.client.post("/api/posts", json=too_long)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "content_not_allowed"
        assert f"account_overrides.{two} (@two on mastodon)" in refused.json()["error"]["message"]

        stranger = {**body, "targets": [two]}
        refused = await api.client.post("/api/posts", json=stranger)
        assert refused.status_code == 422
        assert f"account {one} is not a target" in refused.json()["error"]["message"]

        edited = await api.client.patch(
            f"/api/posts/{post['id']}", json={"account_overrides": {two: {"text": "for @two"}}}
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["account_overrides"] == {two: {"text": "for @two", "media_ids": None}}
        # Dropping a target its variant names is refused: the variant would be for nobody.
        dropped = await api.client.patch(f"/api/posts/{post['id']}", json={"targets": [one]})
        assert dropped.status_code == 422
        listed = (await api.client.get("/api/posts")).json()["items"]
        assert len(listed) == 1 and listed[0]["account_overrides"][two]["text"] == "for @two"


async def test_an_accounts_own_media_are_published_there_and_kept(
    any_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    async with api_server(any_db, sandbox, MEDIA_DIR=str(tmp_path / "media")) as api:
        one = await mastodon_account(api, sandbox, "@one")
        two = await mastodon_account(api, sandbox, "@two")
        uploaded = await upload(api, pictures.plain(20, 20))
        assert uploaded.status_code == 201, uploaded.text
        media_id = uploaded.json()["id"]
        body = {
            "text": "plain",
            "targets": [one, two],
            "account_overrides": {one: {"text": "with a picture", "media_ids": [media_id]}},
        }
        created = await api.client.post("/api/posts", json=body)
        assert created.status_code == 201, created.text
        # Only the variant uses it, and still the post keeps it from being deleted.
        blocked = await api.client.delete(f"/api/media/{media_id}")
        assert blocked.status_code == 409, blocked.text

        ran = await api.client.post("/api/cron/scheduler-optimized", headers=api.cron())
        assert ran.status_code == 200, ran.text
        sent = {r["account"]: (r["text"], len(r["media"])) for r in sandbox.records("mastodon")}
        assert sent == {"token-@one": ("with a picture", 1), "token-@two": ("plain", 0)}
