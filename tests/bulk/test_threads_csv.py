"""Threads and first comments in the CSV: a post with both exports to `thread:<n>`,
`thread_media_*:<n>` and `first_comment` columns and imports back to the same post; a dry run
names the row and the column of a part or comment that does not fit, on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.bulk.test_import_api import CSV, refused, table
from tests.helpers import ApiServer, api_server, mastodon_account
from tests.media import pictures
from tests.media.uploads import upload


async def facebook_page(api: ApiServer, sandbox: SandboxClient) -> str:
    token = sandbox.issue_token("facebook", "page-owner", refresh=False)["access_token"]
    created = await api.client.post(
        "/api/accounts",
        json={
            "platform": "facebook",
            "handle": "page",
            "credentials": {"page_access_token": token},
            "options": {"page_id": "1029"},
            "verify": False,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def shape(post: dict[str, Any]) -> tuple[object, ...]:
    fields = ("text", "scheduled_at", "thread", "first_comment", "media_ids")
    return (*(post[f] for f in fields), sorted(t["account_id"] for t in post["targets"]))


async def test_a_thread_and_first_comment_round_trip_through_export_and_import(
    any_db: Database, sandbox: SandboxClient, tmp_path: Path
) -> None:
    async with api_server(any_db, sandbox, MEDIA_DIR=str(tmp_path / "media")) as api:
        mastodon = await mastodon_account(api, sandbox)
        page = await facebook_page(api, sandbox)
        media_id = (await upload(api, pictures.plain(30, 20))).json()["id"]
        body = {
            "text": "Release notes",
            "targets": [mastodon, page],
            "scheduled_at": "2030-05-01T09:00:00+00:00",
            "thread": [
                {"text": "-1: what changed", "media_ids": [media_id]},
                {"text": "2: what comes next", "media_urls": [sandbox.media_url("next.png")]},
            ],
            "first_comment": "=Notes: https://example.com/notes",
        }
        created = await api.client.post("/api/posts", json=body)
        assert created.status_code == 201, created.text

        exported = await api.client.get("/api/posts/export")
        header = exported.text.splitlines()[0].split(",")
        assert header[8:13] == [
            "first_comment",
            "thread:1",
            "thread_media_ids:1",
            "thread:2",
            "thread_media_urls:2",
        ]
        assert "'=Notes" in exported.text and "'-1: what changed" in exported.text

        dry = await api.client.post(
            "/api/posts/import", params={"dry_run": "true"}, content=exported.content, headers=CSV
        )
        assert dry.status_code == 200, dry.text
        (row,) = dry.json()["rows"]
        assert row["post"]["first_comment"] == body["first_comment"]
        assert [p["text"] for p in row["post"]["thread"]] == [
            "-1: what changed",
            "2: what comes next",
        ]

        imported = await api.client.post("/api/posts/import", content=exported.content, headers=CSV)
        assert imported.status_code == 201, imported.text
        original, copy = (await api.client.get("/api/posts")).json()["items"]
        assert shape(original) == shape(copy)
        assert copy["thread"][0]["media_ids"] == [media_id]
        # The copy's thread keeps its media: the library refuses to delete it.
        assert (await api.client.delete(f"/api/media/{media_id}")).status_code == 409


async def test_a_dry_run_names_the_row_and_column_of_a_part_or_comment(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        mastodon = await mastodon_account(api, sandbox, "@one")
        page = await facebook_page(api, sandbox)
        header = ["text", "targets", "first_comment", "thread:1", "thread_media_ids:2", "thread:3"]
        rows = [
            ["ok", mastodon, "", "a reply", "", ""],
            ["long part", mastodon, "", "x" * 501, "", ""],
            ["gap", mastodon, "", "one", "", "three"],
            ["unknown media", mastodon, "", "one", "nope", ""],
            ["comment too long", page, "y" * 70_000, "", "", ""],
        ]
        for dry_run in ("true", "false"):
            response = await api.client.post(
                "/api/posts/import",
                params={"dry_run": dry_run},
                content=table([header, *rows]),
                headers=CSV,
            )
            error = refused(response, 422, "import_rows_invalid")
            found = {r["row"]: r for r in error["details"]}  # type: ignore[attr-defined]
            assert found[2]["ok"]
            assert [p["column"] for p in found[3]["problems"]] == ["thread:1"]
            assert "500" in found[3]["problems"][0]["message"]
            assert found[4]["problems"] == [
                {
                    "column": "thread:3",
                    "message": "part 3 follows an empty part 2: fill the parts in order",
                }
            ]
            assert [p["column"] for p in found[5]["problems"]] == ["thread_media_ids:2"]
            assert [p["column"] for p in found[6]["problems"]] == ["first_comment"]
            assert (await api.client.get("/api/posts")).json()["items"] == []


async def test_a_thread_column_out_of_range_is_refused(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        for name in ("thread:0", "thread:26", "thread_media_ids:x", "thread:01"):
            response = await api.client.post(
                "/api/posts/import", content=table([["targets", name]]), headers=CSV
            )
            message = refused(response, 422, "csv_invalid")["message"]
            assert "takes a part number from 1 to 25" in str(message), name
