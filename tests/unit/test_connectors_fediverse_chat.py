"""The pure parts of the Mastodon, Bluesky, Telegram, Discord, Slack and Matrix connectors: what
a person typed read into URLs, who may post where, the PDS in a DID document; and each
connector's answer to a platform reply, over a mock transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from postpilot.connect.base import (
    App,
    AppNotConfigured,
    ConnectContext,
    ConnectRefused,
    DirectConnector,
    OAuthConnector,
    RegistersApps,
    Revokes,
)
from postpilot.connect.platforms import _calls, bluesky, discord, mastodon, matrix, slack, telegram

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def context(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    app: App | None = None,
    base_url: str | None = None,
) -> ConnectContext:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ConnectContext(
        http=http, now=lambda: NOW, redirect_uri="https://pp.example/cb", app=app, base_url=base_url
    )


def test_each_connector_declares_the_ways_it_connects() -> None:
    assert isinstance(mastodon.CONNECTOR, OAuthConnector)
    assert isinstance(mastodon.CONNECTOR, RegistersApps)
    assert isinstance(mastodon.CONNECTOR, Revokes)
    assert isinstance(slack.CONNECTOR, OAuthConnector) and isinstance(slack.CONNECTOR, Revokes)
    assert isinstance(discord.CONNECTOR, OAuthConnector)
    assert isinstance(discord.CONNECTOR, DirectConnector)
    for direct in (bluesky.CONNECTOR, telegram.CONNECTOR, matrix.CONNECTOR):
        assert isinstance(direct, DirectConnector)
    assert not isinstance(telegram.CONNECTOR, Revokes)  # only @BotFather revokes a bot token


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("mastodon.social", "https://mastodon.social"),
        (" https://Mastodon.Social/ ", "https://mastodon.social"),
        ("http://127.0.0.1:8000/mastodon/", "http://127.0.0.1:8000/mastodon"),
    ],
)
def test_server_url_reads_what_a_person_types(typed: str, expected: str) -> None:
    assert _calls.server_url(typed, field="inputs.instance", what="x") == expected


@pytest.mark.parametrize("typed", ["", "ftp://host", "https://host/?a=1", "https://u:p@host"])
def test_server_url_refuses_what_is_not_a_plain_web_address(typed: str) -> None:
    with pytest.raises(ConnectRefused) as refused:
        _calls.server_url(typed, field="inputs.instance", what="The instance")
    assert refused.value.field == "inputs.instance"


def test_authorize_url_carries_pkce_only_when_given() -> None:
    url = _calls.authorize_url(
        "https://a.example/authorize",
        client_id="c",
        redirect_uri="https://pp.example/cb",
        scope="a b",
        state="s",
        code_challenge="xyz",
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge"] == ["xyz"] and query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"] and query["scope"] == ["a b"]
    plain = _calls.authorize_url(
        "https://a.example/authorize",
        client_id="c",
        redirect_uri="https://pp.example/cb",
        scope="a",
        state="s",
        code_challenge=None,
    )
    assert "code_challenge" not in plain


def test_expiry_from_a_lifetime() -> None:
    ctx = context(lambda _: httpx.Response(200))
    assert _calls.expires_at(ctx, 3600) == NOW + timedelta(hours=1)
    assert _calls.expires_at(ctx, None) is None and _calls.expires_at(ctx, 0) is None
    assert _calls.expires_at(ctx, True) is None


def test_an_oauth_platform_without_the_deployments_app_names_the_settings() -> None:
    ctx = context(lambda _: httpx.Response(200))
    with pytest.raises(AppNotConfigured, match="CONNECT_SLACK_CLIENT_ID"):
        slack.CONNECTOR.authorize_url(ctx, state="s", code_challenge=None, inputs={})


@pytest.mark.parametrize(
    ("kind", "member", "allowed"),
    [
        ("channel", {"status": "administrator", "can_post_messages": True}, True),
        ("channel", {"status": "administrator", "can_post_messages": False}, False),
        ("channel", {"status": "member"}, False),
        ("channel", {"status": "creator"}, True),
        ("supergroup", {"status": "member"}, True),
        ("group", {"status": "restricted", "can_send_messages": False}, False),
        ("group", {"status": "restricted", "can_send_messages": True}, True),
        ("group", {"status": "left"}, False),
    ],
)
def test_who_may_post_in_a_telegram_chat(kind: str, member: dict[str, Any], allowed: bool) -> None:
    assert (telegram._cannot_post(kind, member) is None) is allowed


def test_the_pds_comes_from_the_atproto_pds_service_entry() -> None:
    document = {
        "id": "did:plc:abc",
        "service": [
            {"id": "#other", "type": "Else", "serviceEndpoint": "https://other.example"},
            {
                "id": "did:plc:abc#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "https://pds.example/",
            },
        ],
    }
    assert bluesky._pds_of(document) == "https://pds.example"
    assert bluesky._pds_of({"service": [{"id": "#atproto_pds", "type": "Else"}]}) is None


async def test_bluesky_reads_the_plc_directory_when_the_session_has_no_did_doc() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("createSession"):
            return httpx.Response(
                200, json={"did": "did:plc:abc", "handle": "a.test", "accessJwt": "x.y.z"}
            )
        return httpx.Response(
            200,
            json={
                "id": "did:plc:abc",
                "alsoKnownAs": ["at://someone-else.test"],
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": "https://pds.example",
                    }
                ],
            },
        )

    inputs = {"handle": "a.test", "app_password": "aaaa-bbbb-cccc-dddd"}
    [target] = await bluesky.CONNECTOR.sign_in(context(handler), inputs)
    assert seen[1] == "https://plc.directory/did:plc:abc"
    assert target.base_url == "https://pds.example"
    assert target.handle == "did:plc:abc"  # the document does not claim the handle back


@pytest.mark.parametrize(
    ("levels", "may"),
    [
        ({}, True),
        ({"users": {"@me:s": 50}, "events": {"m.room.message": 50}}, True),
        ({"users_default": 10, "events_default": 20}, False),
        ({"users": {"@me:s": "100"}, "events_default": 50}, True),
    ],
)
async def test_matrix_power_levels_decide_who_may_post(levels: dict[str, Any], may: bool) -> None:
    ctx = context(lambda _: httpx.Response(200, json=levels))
    assert await matrix.CONNECTOR._may_post(ctx, "https://hs", "t", "!r:s", "@me:s") is may


@pytest.mark.parametrize(
    ("url", "base", "ok"),
    [
        ("https://discord.com/api/webhooks/123456789/abcdefghijklmnop", None, True),
        ("https://discordapp.com/api/v10/webhooks/123456789/abcdefghijklmnop", None, True),
        ("http://discord.com/api/webhooks/123456789/abcdefghijklmnop", None, False),
        ("https://evil.example/api/webhooks/123456789/abcdefghijklmnop", None, False),
        (
            "http://127.0.0.1:9/discord/api/webhooks/123456789/abcdefghijkl",
            "http://127.0.0.1:9/discord",
            True,
        ),
        ("https://discord.com/channels/123456789/987654321", None, False),
    ],
)
def test_discord_webhook_urls(url: str, base: str | None, ok: bool) -> None:
    ctx = context(lambda _: httpx.Response(200), base_url=base)
    if ok:
        webhook_id, _token = discord.CONNECTOR._parse(ctx, url)
        assert webhook_id == "123456789"
    else:
        with pytest.raises(ConnectRefused):
            discord.CONNECTOR._parse(ctx, url)


async def test_an_unreachable_server_is_a_refusal_without_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("boom", request=request)

    ctx = context(handler)
    inputs = {"bot_token": "123456:" + "A" * 30, "chat": "@somechannel"}
    with pytest.raises(ConnectRefused) as refused:
        await telegram.CONNECTOR.sign_in(ctx, inputs)
    assert "could not be reached (ConnectError)" in refused.value.message
    assert "AAAA" not in refused.value.message


async def test_slack_errors_come_with_http_200() -> None:
    ctx = context(
        lambda _: httpx.Response(200, json={"ok": False, "error": "invalid_code"}),
        app=App("c", "s"),
    )
    with pytest.raises(ConnectRefused, match="invalid_code") as refused:
        await slack.CONNECTOR.exchange(ctx, code="c", code_verifier=None, inputs={})
    assert refused.value.field == "code"
