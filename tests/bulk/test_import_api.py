"""CSV import and export through the real app against the sandbox, on SQLite and PostgreSQL:
a dry run reports every row, one bad row creates nothing, a good file is published by a pass
with each account's own text, a re-import creates nothing twice, and an export imports back
to the same posts."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from postpilot.api.routes import bulk
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server, mastodon_account

CSV = {"content-type": "text/csv"}


def table(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def records(text: str) -> list[list[tuple[str, str]]]:
    """An export's rows, each as its (column, cell) pairs with targets in one order."""
    found = []
    for row in csv.DictReader(io.StringIO(text)):
        row["targets"] = ";".join(sorted(row["targets"].split(";")))
        found.append(sorted(row.items()))
    return sorted(found)


async def post_ids(api: ApiServer) -> list[str]:
    return [p["id"] for p in (await api.client.get("/api/posts")).json()["items"]]


def refused(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == code
    return error


async def test_a_dry_run_reports_every_row_and_one_bad_row_creates_nothing(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        one = await mastodon_account(api, sandbox, "@one")
        header = ["text", "scheduled_at", "timezone", "targets", f"text@{one}"]
        good = [
            ["first", "2030-01-01T09:00:00", "Europe/Paris", "@one", ""],
            ["second", "2030-01-02T09:00:00+00:00", "", one, "just for @one"],
        ]
        bad = [
            ["third", "2030-01-03T09:00", "UTC", "@nobody", ""],
            ["fourth", "2030-01-04T09:00", "UTC", "@one", "x" * 501],
            ["fifth", "yesterday", "UTC", "@one", ""],
        ]
        dry = await api.client.post(
            "/api/posts/import",
            params={"dry_run": "true"},
            content=table([header, *good]),
            headers=CSV,
        )
        assert dry.status_code == 200, dry.text
        report = dry.json()
        assert report["ok"] and report["dry_run"] and report["created"] == 2
        assert [r["row"] for r in report["rows"]] == [2, 3]
        first, second = (r["post"] for r in report["rows"])
        assert first["scheduled_at"] == "2030-01-01T08:00:00+00:00"  # Paris local time
        assert first["targets"] == [one] and first["timezone"] == "Europe/Paris"
        assert second["account_overrides"] == {one: {"text": "just for @one"}}
        assert await post_ids(api) == []

        for dry_run in ("true", "false"):
            response = await api.client.post(
                "/api/posts/import",
                params={"dry_run": dry_run},
                content=table([header, *good, *bad]),
                headers=CSV,
            )
            error = refused(response, 422, "import_rows_invalid")
            assert error["message"] == "3 of 5 rows have problems; nothing was imported"
            rows = {r["row"]: r for r in error["details"]}  # type: ignore[attr-defined]
            assert sorted(rows) == [2, 3, 4, 5, 6]
            assert rows[2]["ok"] and rows[3]["ok"] and rows[2]["post"]["text"] == "first"
            assert rows[4]["problems"] == [
                {"column": "targets", "message": "no account @nobody in this workspace"}
            ]
            assert [p["column"] for p in rows[5]["problems"]] == [f"text@{one}"]
            assert "(@one on mastodon)" in rows[5]["problems"][0]["message"]
            assert [p["column"] for p in rows[6]["problems"]] == ["scheduled_at"]
            assert await post_ids(api) == []


async def test_an_imported_file_is_published_with_each_accounts_text_once(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        one = await mastodon_account(api, sandbox, "@one")
        two = await mastodon_account(api, sandbox, "@two")
        three = await mastodon_account(api, sandbox, "@three")
        data = table(
            [
                ["external_id", "text", "targets", "text:mastodon", f"text@{one}", "text@@two"],
                ["a-1", "plain", "@one;@two;@three", "on mastodon", "for one", "for two"],
                ["a-2", "second", f"{three}", "", "", ""],
            ]
        )
        # As a spreadsheet would send it: a multipart form with the file.
        created = await api.client.post(
            "/api/posts/import", files={"file": ("posts.csv", data, "text/csv")}
        )
        assert created.status_code == 201, created.text
        assert created.json()["created"] == 2
        imported = created.json()["rows"][0]["post"]
        assert imported["account_overrides"] == {one: {"text": "for one"}, two: {"text": "for two"}}

        again = await api.client.post("/api/posts/import", content=data, headers=CSV)
        assert again.status_code == 201, again.text
        assert again.json()["created"] == 0 and again.json()["existing"] == 2
        assert again.json()["rows"][0]["existing_post_id"] == imported["id"]
        assert len(await post_ids(api)) == 2

        ran = await api.client.post("/api/cron/scheduler-optimized", headers=api.cron())
        assert ran.status_code == 200, ran.text
        sent = sorted((r["account"], r["text"]) for r in sandbox.records("mastodon"))
        assert sent == [
            ("token-@one", "for one"),
            ("token-@three", "on mastodon"),
            ("token-@three", "second"),
            ("token-@two", "for two"),
        ]
        post = (await api.client.get(f"/api/posts/{imported['id']}")).json()
        assert post["status"] == "published"


async def test_an_export_imports_back_to_the_same_posts(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        one = await mastodon_account(api, sandbox, "@one")
        two = await mastodon_account(api, sandbox, "@two")
        bodies = [
            {
                "text": '=HYPERLINK("http://evil")',
                "targets": [one, two],
                "scheduled_at": "2030-03-30T09:30:00",
                "timezone": "Europe/Paris",
                "overrides": {"mastodon": '-on mastodon, with a "quote", and a comma'},
                "account_overrides": {two: {"text": "@two's own,\nover two lines"}},
            },
            {
                "text": "'apostrophe",
                "targets": [two],
                "scheduled_at": "2030-04-01T10:00:00+02:00",
                "media_urls": [sandbox.media_url()],
            },
        ]
        for body in bodies:
            response = await api.client.post("/api/posts", json=body)
            assert response.status_code == 201, response.text

        exported = await api.client.get("/api/posts/export", params={"format": "csv"})
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("text/csv")
        lines = exported.text.splitlines()
        assert lines[0].startswith("external_id,text,scheduled_at,timezone,targets,")
        assert "'=HYPERLINK" in exported.text, "formula cells are written as text"

        imported = await api.client.post("/api/posts/import", content=exported.content, headers=CSV)
        assert imported.status_code == 201, imported.text
        assert imported.json()["created"] == 2

        def key(post: dict[str, object]) -> tuple[object, ...]:
            fields = ("text", "scheduled_at", "timezone", "overrides", "account_overrides")
            targets = sorted(t["account_id"] for t in post["targets"])  # type: ignore[attr-defined]
            return (*(str(post[f]) for f in fields), targets, post["media_urls"])

        posts = (await api.client.get("/api/posts")).json()["items"]
        copies = sorted(key(p) for p in posts)
        assert copies[0::2] == copies[1::2], "each post and its imported copy are equal"
        again = await api.client.get("/api/posts/export")
        assert records(again.text) == sorted(records(exported.text) * 2)

        mine = await api.client.get("/api/posts/export", params={"account_id": one})
        assert len(list(csv.reader(io.StringIO(mine.text)))) == 1 + 2  # the header, two posts


async def test_files_that_cannot_be_imported_are_refused_and_change_nothing(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox, IMPORT_MAX_ROWS=2, IMPORT_MAX_BYTES=2048) as api:
        await mastodon_account(api, sandbox, "@one")
        client = api.client
        refused(
            await client.post("/api/posts/import", json={"text": "hi"}),
            415,
            "unsupported_media_type",
        )
        refused(
            await client.post("/api/posts/import", content=b"x" * 3000, headers=CSV),
            413,
            "body_too_large",
        )
        too_many = table([["text", "targets"], *[["hi", "@one"]] * 3])
        error = refused(
            await client.post("/api/posts/import", content=too_many, headers=CSV),
            422,
            "csv_invalid",
        )
        assert "IMPORT_MAX_ROWS" in str(error["message"])
        error = refused(
            await client.post("/api/posts/import", content=b"text,colour\n", headers=CSV),
            422,
            "csv_invalid",
        )
        assert "unknown column 'colour'" in str(error["message"])
        refused(
            await client.post("/api/posts/import", files={"other": ("a.csv", b"targets\n")}),
            422,
            "invalid_request",
        )
        refused(
            await client.get("/api/posts/export", params={"format": "xlsx"}), 422, "invalid_request"
        )
        assert await post_ids(api) == []


async def test_an_external_id_taken_meanwhile_is_a_conflict_and_creates_nothing(
    any_db: Database, sandbox: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_server(any_db, sandbox) as api:
        await mastodon_account(api, sandbox, "@one")
        first = table([["external_id", "text", "targets"], ["e-1", "first", "@one"]])
        assert (await api.client.post("/api/posts/import", content=first, headers=CSV)).is_success

        # As if another import wrote e-1 between this one's look-up and its insert.
        async def nothing_seen(*_args: object) -> dict[str, str]:
            return {}

        monkeypatch.setattr(bulk.posts, "by_external_ids", nothing_seen)
        both = table(
            [["external_id", "text", "targets"], ["e-0", "new", "@one"], ["e-1", "x", "@one"]]
        )
        response = await api.client.post("/api/posts/import", content=both, headers=CSV)
        refused(response, 409, "import_conflict")
        assert len(await post_ids(api)) == 1
