"""Accounts are checked against their platform's declared fields when they are connected and when
they are changed: a 422 in the error shape names each missing or unknown field, and nothing is
saved. `GET /api/platforms` and the OpenAPI document show every platform's fields."""

from __future__ import annotations

from typing import Any

import httpx

from postpilot.publishers.registry import PUBLISHERS
from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server, mastodon_account

TELEGRAM = {
    "platform": "telegram",
    "handle": "@news",
    "credentials": {"bot_token": "123:abc"},
    "options": {"chat_id": "@news"},
}


def refused_fields(response: httpx.Response) -> set[str]:
    """The fields a 422 names, after checking it has the error shape."""
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_request", error
    for detail in error["details"]:
        assert detail["field"] in error["message"] and detail["message"], error
    return {detail["field"] for detail in error["details"]}


async def accounts(api: ApiServer) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await api.client.get("/api/accounts")).json()
    return listed


async def test_a_new_account_needs_its_platforms_fields_and_no_others(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({**TELEGRAM, "credentials": {}}, {"credentials.bot_token"}),
            ({**TELEGRAM, "credentials": {"bot_token": ""}}, {"credentials.bot_token"}),
            ({**TELEGRAM, "options": {}}, {"options.chat_id"}),
            (
                {**TELEGRAM, "options": {"chat_id": 1, "chatid": 1}},
                {"options.chatid"},
            ),
            (
                {
                    "platform": "matrix",
                    "handle": "@me:matrix.org",
                    "credentials": {"access_token": "t"},
                },
                {"options.room_id"},
            ),
            (
                {"platform": "bluesky", "handle": "me.bsky.social", "credentials": {"foo": "bar"}},
                {"credentials.foo", "credentials"},
            ),
            (
                {
                    "platform": "bluesky",
                    "handle": "me.bsky.social",
                    "credentials": {"identifier": "me.bsky.social"},
                },
                {"credentials"},
            ),
            (
                {"platform": "mastodon", "handle": "@me", "credentials": {"access_token": "t"}},
                {"base_url"},
            ),
            (
                {
                    "platform": "discord",
                    "handle": "#general",
                    "credentials": {"webhook_id": "1", "bot_token": "b"},
                },
                {"credentials"},
            ),
            (
                {
                    "platform": "slack",
                    "handle": "#general",
                    "credentials": {"access_token": "xoxb-1"},
                    "options": {"chanel": "C1"},
                },
                {"options.chanel", "options.channel"},
            ),
        ]
        for body, fields in cases:
            response = await api.client.post("/api/accounts", json=body)
            assert refused_fields(response) == fields, body
        assert await accounts(api) == []

        accepted = [
            TELEGRAM,
            {**TELEGRAM, "options": {"chat_id": -100123, "parse_mode": "HTML"}},
            {
                "platform": "bluesky",
                "handle": "me.bsky.social",
                "credentials": {"identifier": "me.bsky.social", "password": "app-password"},
            },
            {
                "platform": "discord",
                "handle": "#general",
                "credentials": {
                    "webhook_url": "https://discord.com/api/webhooks/1/token",
                    "bot_token": "b",
                },
                "options": {"channel_id": "2", "guild_id": "3"},
            },
            {
                "platform": "matrix",
                "handle": "@me:matrix.org",
                "credentials": {"user": "@me:matrix.org", "password": "p"},
                "options": {"room_id": "!room:matrix.org"},
            },
            {
                "platform": "mastodon",
                "handle": "@me",
                "base_url": "https://mastodon.example",
                "credentials": {"access_token": "t"},
                "options": {"visibility": "unlisted"},
            },
        ]
        for body in accepted:  # made-up credentials: not checked live
            response = await api.client.post("/api/accounts", json={**body, "verify": False})
            assert response.status_code == 201, (body, response.text)
        assert len(await accounts(api)) == len(accepted)


async def test_a_change_is_checked_like_a_new_account(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        created = await api.client.post("/api/accounts", json={**TELEGRAM, "verify": False})
        assert created.status_code == 201, created.text
        telegram = f"/api/accounts/{created.json()['id']}"
        mastodon = await mastodon_account(api)
        cases: list[tuple[str, dict[str, Any], set[str]]] = [
            (
                telegram,
                {"credentials": {"token": "t"}},
                {"credentials.token", "credentials.bot_token"},
            ),
            (telegram, {"credentials": None}, {"credentials.bot_token"}),
            (telegram, {"options": {"parse_mode": "HTML"}}, {"options.chat_id"}),
            (
                telegram,
                {"handle": "@renamed", "options": {"room_id": "!r"}},
                {"options.room_id", "options.chat_id"},
            ),
            (f"/api/accounts/{mastodon}", {"base_url": None}, {"base_url"}),
        ]
        for path, body, fields in cases:
            assert refused_fields(await api.client.patch(path, json=body)) == fields, body
        unchanged = (await api.client.get(telegram)).json()
        assert (unchanged["handle"], unchanged["options"]) == ("@news", {"chat_id": "@news"})

        changed = await api.client.patch(
            telegram,
            json={"credentials": {"bot_token": "456:def"}, "options": {"chat_id": 42}},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["options"] == {"chat_id": 42}


async def test_every_platforms_fields_are_listed_and_documented(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        response = await api.client.get("/api/platforms")
        assert response.status_code == 200, response.text
        listed = {entry["platform"]: entry for entry in response.json()}
        async with httpx.AsyncClient(base_url=api.url) as anonymous:
            assert (await anonymous.get("/api/platforms")).status_code == 401
        document = (await api.client.get("/openapi.json")).json()
    assert set(listed) == set(PUBLISHERS)
    telegram = listed["telegram"]
    assert telegram["base_url_required"] is False and telegram["credential_sets"] == []
    assert telegram["credentials"] == [
        {
            "name": "bot_token",
            "description": "The bot's token from @BotFather.",
            "required": True,
            "secret": True,
        }
    ]
    assert [(o["name"], o["required"]) for o in telegram["options"]] == [
        ("chat_id", True),
        ("parse_mode", False),
    ]
    assert listed["mastodon"]["base_url_required"] is True
    assert listed["bluesky"]["credential_sets"] == [
        ["did", "access_jwt"],
        ["identifier", "password"],
    ]
    pds = next(c for c in listed["bluesky"]["credentials"] if c["name"] == "pds_url")
    assert pds["secret"] is False

    assert "/api/platforms" in document["paths"]
    described = document["components"]["schemas"]["AccountCreate"]["description"]
    for platform, entry in listed.items():
        assert f"| {platform} |" in described
        for field in entry["credentials"] + entry["options"]:
            assert f"`{field['name']}`" in described, (platform, field["name"])
