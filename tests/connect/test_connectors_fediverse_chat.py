"""Connect flows of Mastodon, Bluesky, Telegram, Discord, Slack and Matrix against the sandbox
process, each connector called as the service calls it: the inputs a person gives, the consent
step and the callback's code where there is one, the targets and the live verify; then the
platform's refusals, each with a message a person can act on; and a post published by the real
publisher with the credentials the connect produced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from postpilot.connect.base import (
    App,
    ConnectContext,
    ConnectRefused,
    Grant,
    OAuthConnector,
    Target,
)
from postpilot.connect.platforms import bluesky, discord, mastodon, matrix, slack, telegram
from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext, Publisher, Refreshed
from postpilot.publishers.bluesky import BlueskyPublisher
from postpilot.publishers.discord import DiscordPublisher
from postpilot.publishers.mastodon import MastodonPublisher
from postpilot.publishers.matrix import MatrixPublisher
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.slack import SlackPublisher
from postpilot.publishers.telegram import TelegramPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import account, publish_request, unique

REDIRECT_URI = "https://postpilot.example/api/connect/callback"
BOT_TOKEN = "123456789:AAEsandboxBotTokenForConnectTests"
BSKY_HANDLE, BSKY_PASSWORD = "sandbox-user.test", "sbox-user-test-pass"  # sandbox defaults


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def context(
    http: httpx.AsyncClient, *, app: App | None = None, base_url: str | None = None
) -> ConnectContext:
    return ConnectContext(
        http=http, now=utcnow, redirect_uri=REDIRECT_URI, app=app, base_url=base_url
    )


class Flow:
    """One OAuth attempt as the service runs it: state, PKCE verifier, authorize URL, the
    consent page's redirect back to us."""

    def __init__(
        self, connector: OAuthConnector, ctx: ConnectContext, inputs: Mapping[str, str]
    ) -> None:
        self.connector, self.ctx, self.inputs = connector, ctx, inputs
        self.state = generate_token(24)
        self.verifier = generate_token(48) if connector.pkce else None
        challenge = create_s256_code_challenge(self.verifier) if self.verifier else None
        self.url = connector.authorize_url(
            ctx, state=self.state, code_challenge=challenge, inputs=inputs
        )

    async def callback(self) -> dict[str, str]:
        """Open the authorize URL (the sandbox answers at once, per `connect_consent`) and
        read the callback's query from its redirect."""
        response = await self.ctx.http.get(self.url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["state"] == self.state
        return query

    async def grant(self, code: str | None = None) -> Grant:
        code = code or (await self.callback())["code"]
        return await self.connector.exchange(
            self.ctx, code=code, code_verifier=self.verifier, inputs=self.inputs
        )


def revoke_app(sandbox: SandboxClient, platform: str, subject: str = "sandbox-user") -> None:
    response = httpx.post(
        f"{sandbox.url}/_sandbox/connect/revoke_app",
        json={"platform": platform, "subject": subject},
    )
    response.raise_for_status()


async def publish(
    http: httpx.AsyncClient,
    publisher: Publisher,
    target: Target,
    *,
    base_urls: dict[str, str] | None = None,
) -> outcomes.Outcome:
    """One post through the real publisher with what the connect produced."""
    media = MediaFetcher(
        http, max_bytes=64 * 1024, allowed_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5
    )
    ctx = PublishContext(http=http, media=media, now=utcnow, base_urls=base_urls or {})
    acct = account(
        publisher.platform,
        dict(target.credentials),
        dict(target.options),
        handle=target.handle,
        base_url=target.base_url,
    )
    return await publisher.publish(publish_request(acct, unique("connected")), ctx)


# --- Mastodon ------------------------------------------------------------------------------


async def mastodon_flow(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> tuple[Flow, dict[str, str]]:
    inputs = {"instance": sandbox.platform_url("mastodon")}
    connector = mastodon.CONNECTOR
    app = await connector.register_app(context(http), inputs)
    return Flow(connector, context(http, app=app), inputs), inputs


async def test_mastodon_registers_an_app_then_connects_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    sandbox.configure(connect_consent="approve")
    connector = mastodon.CONNECTOR
    instance = sandbox.platform_url("mastodon")
    assert connector.app_key({"instance": f"{instance}/"}) == instance
    flow, inputs = await mastodon_flow(sandbox, http)
    query = parse_qs(urlsplit(flow.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["write:statuses write:media profile"]

    grant = await flow.grant()
    assert grant.expires_at is None and grant.refresh_token is None
    [target] = await connector.targets(flow.ctx, grant, inputs)
    assert target.base_url == instance
    assert target.credentials == {"access_token": grant.access_token}
    assert target.handle == f"@sandbox-user@{urlsplit(instance).netloc}"
    identity = await connector.verify(flow.ctx, target)
    assert identity.platform_id == target.platform_id

    outcome = await publish(http, MastodonPublisher(), target)
    assert isinstance(outcome, outcomes.Published), outcome
    assert sandbox.records("mastodon")[-1]["account"] == grant.access_token

    # Disconnect: the instance revokes the token, and verify then says so.
    ctx = context(http, app=flow.ctx.app, base_url=instance)
    await connector.revoke(ctx, target.credentials)
    with pytest.raises(ConnectRefused, match="does not accept the account's token") as refused:
        await connector.verify(flow.ctx, target)
    assert refused.value.field == "credentials.access_token"


async def test_mastodon_without_pkce_support_connects_without_a_verifier(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    """An instance before 4.3 has no server metadata and ignores PKCE."""
    sandbox.configure(connect_consent="approve", mastodon_pkce=False)
    flow, inputs = await mastodon_flow(sandbox, http)
    grant = await flow.grant()
    [target] = await mastodon.CONNECTOR.targets(flow.ctx, grant, inputs)
    assert (await mastodon.CONNECTOR.verify(flow.ctx, target)).platform_id


async def test_mastodon_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    sandbox.configure(connect_consent="approve")
    flow, _inputs = await mastodon_flow(sandbox, http)
    code = (await flow.callback())["code"]
    await flow.grant(code)
    with pytest.raises(ConnectRefused, match="already used, has expired") as replayed:
        await flow.grant(code)
    assert replayed.value.field == "code"

    # The verifier must be the one the challenge was made from.
    other, _ = await mastodon_flow(sandbox, http)
    other.verifier = generate_token(48)
    with pytest.raises(ConnectRefused, match="refused the authorization code"):
        await other.grant()

    # The person removes the app from their account: the token stops working.
    third, inputs = await mastodon_flow(sandbox, http)
    [target] = await mastodon.CONNECTOR.targets(third.ctx, await third.grant(), inputs)
    revoke_app(sandbox, "mastodon")
    with pytest.raises(ConnectRefused, match="app was revoked"):
        await mastodon.CONNECTOR.verify(third.ctx, target)

    # A code redeemed after its lifetime (here: none at all).
    sandbox.configure(code_ttl_seconds={"mastodon": 0})
    late, _ = await mastodon_flow(sandbox, http)
    with pytest.raises(ConnectRefused, match="has expired"):
        await late.grant()

    sandbox.configure(connect_consent="deny")
    denied, _ = await mastodon_flow(sandbox, http)
    assert (await denied.callback())["error"] == "access_denied"

    with pytest.raises(ConnectRefused) as bad_instance:
        await mastodon.CONNECTOR.register_app(context(http), {"instance": "ftp://x"})
    assert bad_instance.value.field == "inputs.instance"
    not_mastodon = {"instance": sandbox.platform_url("telegram")}
    with pytest.raises(ConnectRefused, match="is it a Mastodon instance"):
        await mastodon.CONNECTOR.register_app(context(http), not_mastodon)


# --- Telegram ------------------------------------------------------------------------------


async def test_telegram_bot_admin_of_a_channel_connects_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    ctx = context(http, base_url=sandbox.platform_url("telegram"))
    inputs = {"bot_token": BOT_TOKEN, "chat": "@sandbox_channel"}
    [target] = await telegram.CONNECTOR.sign_in(ctx, inputs)
    assert target.platform_id == "-1001000000001"
    assert target.options == {"chat_id": "-1001000000001"}
    assert target.credentials == {"bot_token": BOT_TOKEN}
    assert target.handle == "@sandbox_channel"
    assert (await telegram.CONNECTOR.verify(ctx, target)).platform_id == target.platform_id

    base_urls = {"telegram": sandbox.platform_url("telegram")}
    outcome = await publish(http, TelegramPublisher(), target, base_urls=base_urls)
    assert isinstance(outcome, outcomes.Published), outcome
    assert sandbox.records("telegram")[-1]["account"] == "-1001000000001"

    # A group by its numeric id: a plain member may post.
    group = {"bot_token": BOT_TOKEN, "chat": "-1001000000003"}
    [in_group] = await telegram.CONNECTOR.sign_in(ctx, group)
    assert in_group.name == "Sandbox group"


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"bot_token": "not-a-token", "chat": "@sandbox_channel"}, "bot_token", "not a bot token"),
        ({"bot_token": BOT_TOKEN, "chat": "sandbox channel"}, "chat", "@channelusername"),
        ({"bot_token": BOT_TOKEN, "chat": "@nowhere_at_all"}, "chat", "chat not found"),
        ({"bot_token": BOT_TOKEN, "chat": "@sandbox_readers"}, "chat", "not an administrator"),
    ],
)
async def test_telegram_refusals(
    sandbox: SandboxClient,
    http: httpx.AsyncClient,
    inputs: dict[str, str],
    field: str,
    message: str,
) -> None:
    ctx = context(http, base_url=sandbox.platform_url("telegram"))
    with pytest.raises(ConnectRefused, match=message) as refused:
        await telegram.CONNECTOR.sign_in(ctx, inputs)
    assert refused.value.field == f"inputs.{field}"
    assert BOT_TOKEN not in refused.value.message


async def test_telegram_revoked_token_and_demoted_bot(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    ctx = context(http, base_url=sandbox.platform_url("telegram"))
    [target] = await telegram.CONNECTOR.sign_in(
        ctx, {"bot_token": BOT_TOKEN, "chat": "@sandbox_channel"}
    )
    # The channel's owner takes "Post messages" away from the bot.
    demoted = {"id": -1001000000001, "title": "Sandbox channel", "type": "channel"}
    demoted |= {"bot_status": "administrator", "can_post_messages": False}
    sandbox.configure(telegram_chats={"@sandbox_channel": demoted})
    with pytest.raises(ConnectRefused, match="without the right to post"):
        await telegram.CONNECTOR.verify(ctx, target)
    sandbox.revoke(BOT_TOKEN)  # @BotFather issued a new token
    with pytest.raises(ConnectRefused, match="does not know this bot token") as refused:
        await telegram.CONNECTOR.verify(ctx, target)
    assert refused.value.field == "credentials.bot_token"


# --- Bluesky -------------------------------------------------------------------------------


@pytest.mark.parametrize("did_doc", [True, False], ids=["session-didDoc", "plc-directory"])
async def test_bluesky_app_password_connects_on_the_resolved_pds_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient, did_doc: bool
) -> None:
    """The PDS comes from the DID document: in the session's didDoc, or (as the reference PDS
    answers) from the directory; the service signed in at is a different URL here."""
    sandbox.configure(bluesky_session_did_doc=did_doc)
    pds = sandbox.platform_url("bluesky")
    ctx = context(http, base_url=pds)  # the directory's host: the sandbox
    inputs = {"handle": f"@{BSKY_HANDLE}", "app_password": BSKY_PASSWORD, "service": f"{pds}/"}
    [target] = await bluesky.CONNECTOR.sign_in(ctx, inputs)
    assert target.platform_id.startswith("did:plc:")
    assert target.handle == BSKY_HANDLE
    assert target.base_url == pds and target.credentials["pds_url"] == pds
    assert set(target.credentials) == {
        "did",
        "access_jwt",
        "refresh_jwt",
        "identifier",
        "password",
        "pds_url",
    }
    assert target.expires_at is not None and target.expires_at > utcnow()
    identity = await bluesky.CONNECTOR.verify(ctx, target)
    assert (identity.platform_id, identity.handle) == (target.platform_id, BSKY_HANDLE)

    outcome = await publish(http, BlueskyPublisher(), target)
    assert isinstance(outcome, outcomes.Published), outcome
    assert outcome.platform_post_id.startswith(f"at://{target.platform_id}/")

    # Disconnect ends the session: its refresh token is refused from then on.
    await bluesky.CONNECTOR.revoke(ctx, target.credentials)
    refreshed = await http.post(
        f"{pds}/xrpc/com.atproto.server.refreshSession",
        headers={"Authorization": f"Bearer {target.credentials['refresh_jwt']}"},
    )
    assert refreshed.json()["error"] == "ExpiredToken"


async def test_bluesky_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    pds = sandbox.platform_url("bluesky")
    ctx = context(http, base_url=pds)
    wrong = {"handle": BSKY_HANDLE, "app_password": "aaaa-bbbb-cccc-dddd", "service": pds}
    with pytest.raises(ConnectRefused, match="AuthenticationRequired") as refused:
        await bluesky.CONNECTOR.sign_in(ctx, wrong)
    assert refused.value.field == "inputs.app_password"
    assert "aaaa-bbbb" not in refused.value.message
    with pytest.raises(ConnectRefused) as missing:
        await bluesky.CONNECTOR.sign_in(ctx, {"handle": BSKY_HANDLE, "service": pds})
    assert missing.value.field == "inputs.app_password"

    # No service named: Bluesky's own host, which the sandbox replaces.
    inputs = {"handle": BSKY_HANDLE, "app_password": BSKY_PASSWORD}
    [target] = await bluesky.CONNECTOR.sign_in(ctx, inputs)
    assert target.base_url == pds
    revoke_app(sandbox, "bluesky", target.platform_id)
    with pytest.raises(ConnectRefused, match="does not accept the session") as revoked:
        await bluesky.CONNECTOR.verify(ctx, target)
    assert revoked.value.field == "credentials.access_jwt"


# --- Discord -------------------------------------------------------------------------------

DISCORD_APP = App("postpilot-discord", "discord-secret")


def register_client(sandbox: SandboxClient, app: App, **settings: Any) -> None:
    """The deployment's app at the sandbox: its secret and the one redirect URI."""
    client = {"secret": app.client_secret, "redirect_uris": [REDIRECT_URI]}
    sandbox.configure(connect_consent="approve", oauth_clients={app.client_id: client}, **settings)


async def test_discord_pasted_webhook_connects_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    base = sandbox.platform_url("discord")
    ctx = context(http, app=DISCORD_APP, base_url=base)
    url = f"{base}/api/webhooks/112233445566778899/pasted-webhook-token_0123456789"
    [target] = await discord.CONNECTOR.sign_in(ctx, {"webhook_url": url})
    assert target.credentials == {
        "webhook_id": "112233445566778899",
        "webhook_token": "pasted-webhook-token_0123456789",
    }
    assert target.options["channel_id"] and target.options["guild_id"]
    outcome = await publish(http, DiscordPublisher(), target, base_urls={"discord": base})
    assert isinstance(outcome, outcomes.Published), outcome

    # Disconnecting leaves a webhook the person made alone.
    await discord.CONNECTOR.revoke(ctx, target.credentials)
    assert (await discord.CONNECTOR.verify(ctx, target)).platform_id == target.platform_id

    # The person deletes it in Discord: the check says so in Discord's words.
    sandbox.revoke("pasted-webhook-token_0123456789")
    with pytest.raises(ConnectRefused, match="Unknown Webhook, 10015") as refused:
        await discord.CONNECTOR.verify(ctx, target)
    assert refused.value.field == "credentials.webhook_token"
    assert "pasted-webhook-token" not in refused.value.message

    elsewhere = {"webhook_url": "https://example.com/api/webhooks/1122334455/abcdefghijkl"}
    with pytest.raises(ConnectRefused, match="not a Discord webhook URL") as foreign:
        await discord.CONNECTOR.sign_in(ctx, elsewhere)
    assert foreign.value.field == "inputs.webhook_url"


async def test_discord_oauth_webhook_incoming_connects_publishes_and_is_deleted(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    register_client(sandbox, DISCORD_APP)
    base = sandbox.platform_url("discord")
    ctx = context(http, app=DISCORD_APP, base_url=base)
    flow = Flow(discord.CONNECTOR, ctx, {})
    assert flow.url.startswith(f"{base}/oauth2/authorize?")
    assert parse_qs(urlsplit(flow.url).query)["scope"] == ["webhook.incoming"]
    code = (await flow.callback())["code"]
    grant = await flow.grant(code)
    assert grant.expires_at is not None
    [target] = await discord.CONNECTOR.targets(ctx, grant, {})
    assert await discord.CONNECTOR.verify(ctx, target)
    outcome = await publish(http, DiscordPublisher(), target, base_urls={"discord": base})
    assert isinstance(outcome, outcomes.Published), outcome

    with pytest.raises(ConnectRefused, match="already used or has expired"):
        await flow.grant(code)

    # Our app made this webhook: disconnecting deletes it.
    await discord.CONNECTOR.revoke(ctx, target.credentials)
    with pytest.raises(ConnectRefused, match="Unknown Webhook"):
        await discord.CONNECTOR.verify(ctx, target)

    sandbox.configure(connect_consent="deny")
    assert (await Flow(discord.CONNECTOR, ctx, {}).callback())["error"] == "access_denied"


# --- Slack ---------------------------------------------------------------------------------

SLACK_APP = App("postpilot-slack", "slack-secret")


@pytest.mark.parametrize("rotation", [False, True], ids=["long-lived", "rotation"])
async def test_slack_install_lists_channels_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient, rotation: bool
) -> None:
    register_client(sandbox, SLACK_APP, slack_token_rotation=rotation)
    base = sandbox.platform_url("slack")
    ctx = context(http, app=SLACK_APP, base_url=base)
    flow = Flow(slack.CONNECTOR, ctx, {})
    assert flow.url.startswith(f"{base}/oauth/v2/authorize?")
    assert parse_qs(urlsplit(flow.url).query)["scope"] == [",".join(slack.SCOPES)]
    grant = await flow.grant()
    targets = await slack.CONNECTOR.targets(ctx, grant, {})
    # Public channels, and the private one the bot was invited to.
    assert [t.handle for t in targets] == ["#general", "#announcements", "#team-private"]
    general = targets[0]
    assert general.options == {"channel": "C0SANDBOX01"}
    assert general.platform_id == "T0SANDBOX:C0SANDBOX01"
    identity = await slack.CONNECTOR.verify(ctx, general)
    assert identity.platform_id == general.platform_id
    if rotation:
        assert general.expires_at is not None
        assert set(general.credentials) == {
            "access_token",
            "refresh_token",
            "client_id",
            "client_secret",
        }
    else:
        assert general.expires_at is None and set(general.credentials) == {"access_token"}

    outcome = await publish(http, SlackPublisher(), general, base_urls={"slack": base})
    assert isinstance(outcome, outcomes.Published), outcome
    assert sandbox.records("slack")[-1]["account"] == "C0SANDBOX01"
    if rotation:  # the publisher renews with what the connect stored
        pctx = PublishContext(
            http=http,
            media=MediaFetcher(http, max_bytes=1024, allowed_hosts=frozenset()),
            now=utcnow,
            base_urls={"slack": base},
        )
        renewed = await SlackPublisher().refresh(
            account("slack", dict(general.credentials), dict(general.options)), pctx
        )
        assert isinstance(renewed, Refreshed), renewed

    await slack.CONNECTOR.revoke(ctx, general.credentials)
    with pytest.raises(ConnectRefused, match="token_revoked") as refused:
        await slack.CONNECTOR.verify(ctx, general)
    assert refused.value.field == "credentials.access_token"


async def test_slack_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    register_client(sandbox, SLACK_APP)
    ctx = context(http, app=SLACK_APP, base_url=sandbox.platform_url("slack"))
    with pytest.raises(ConnectRefused, match="invalid_code") as made_up:
        await Flow(slack.CONNECTOR, ctx, {}).grant("not-a-code")
    assert made_up.value.field == "code"

    flow = Flow(slack.CONNECTOR, ctx, {})
    code = (await flow.callback())["code"]
    grant = await flow.grant(code)
    with pytest.raises(ConnectRefused, match="already used or has expired"):
        await flow.grant(code)

    # The workspace removes the app: every token of the install stops working.
    [target, *_] = await slack.CONNECTOR.targets(ctx, grant, {})
    revoke_app(sandbox, "slack")
    with pytest.raises(ConnectRefused, match="app was removed"):
        await slack.CONNECTOR.verify(ctx, target)

    wrong_secret = context(http, app=App(SLACK_APP.client_id, "nope"), base_url=ctx.base_url)
    other = Flow(slack.CONNECTOR, wrong_secret, {})
    with pytest.raises(ConnectRefused, match="bad_client_secret"):
        await other.grant()

    # The person leaves out a scope posting needs.
    sandbox.configure(connect_declined_scopes={"slack": ["chat:write"]})
    with pytest.raises(ConnectRefused, match="did not grant chat:write"):
        await Flow(slack.CONNECTOR, ctx, {}).grant()

    sandbox.configure(connect_consent="deny")
    assert (await Flow(slack.CONNECTOR, ctx, {}).callback())["error"] == "access_denied"


# --- Matrix --------------------------------------------------------------------------------

MATRIX_LOGIN = {"user": "sandbox-user", "password": "sandbox-user-password"}  # sandbox default
ME = "@sandbox-user:sandbox.test"


async def test_matrix_password_login_lists_rooms_it_may_post_in_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    homeserver = sandbox.platform_url("matrix")
    ctx = context(http, base_url=homeserver)
    [target] = await matrix.CONNECTOR.sign_in(ctx, {"homeserver": homeserver, **MATRIX_LOGIN})
    # Announcements needs power level 50 to post; News is only an invitation.
    assert target.options == {"room_id": "!general:sandbox.test"}
    assert target.name == f"General ({ME})" and target.handle == ME
    assert target.base_url == homeserver
    assert set(target.credentials) == {"access_token", "refresh_token", "device_id"}
    assert target.credentials["device_id"].startswith("POSTPILOT")
    assert target.expires_at is not None and target.expires_at > utcnow()
    identity = await matrix.CONNECTOR.verify(ctx, target)
    assert identity.platform_id == f"{ME}/!general:sandbox.test"

    outcome = await publish(http, MatrixPublisher(), target)
    assert isinstance(outcome, outcomes.Published), outcome
    assert sandbox.records("matrix")[-1]["extra"]["room_id"] == "!general:sandbox.test"

    # A room by its alias: joined (the invitation accepted), then the only target.
    inputs = {"homeserver": homeserver, "room": "#news:sandbox.test", **MATRIX_LOGIN}
    [news] = await matrix.CONNECTOR.sign_in(ctx, inputs)
    assert news.options == {"room_id": "!news:sandbox.test"}

    # Disconnect logs the device out: its token is refused from then on.
    await matrix.CONNECTOR.revoke(context(http, base_url=homeserver), target.credentials)
    with pytest.raises(ConnectRefused, match="M_UNKNOWN_TOKEN") as refused:
        await matrix.CONNECTOR.verify(ctx, target)
    assert refused.value.field == "credentials.access_token"


async def test_matrix_access_token_connects(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    homeserver = sandbox.platform_url("matrix")
    token = sandbox.issue_token("matrix", ME, refresh=False)["access_token"]
    inputs = {"homeserver": homeserver, "access_token": token}
    [target] = await matrix.CONNECTOR.sign_in(context(http), inputs)
    assert target.credentials == {"access_token": token}
    assert target.options == {"room_id": "!general:sandbox.test"}


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        ({"user": "sandbox-user", "password": "not-it"}, "password", "M_FORBIDDEN"),
        ({"user": "sandbox-user"}, "password", "user and password, or an access token"),
        ({**MATRIX_LOGIN, "room": "!announcements:sandbox.test"}, "room", "may not post"),
        ({**MATRIX_LOGIN, "room": "#nowhere:sandbox.test"}, "room", "M_NOT_FOUND"),
        ({**MATRIX_LOGIN, "room": "general"}, "room", "by its id"),
    ],
)
async def test_matrix_refusals(
    sandbox: SandboxClient,
    http: httpx.AsyncClient,
    inputs: dict[str, str],
    field: str,
    message: str,
) -> None:
    homeserver = sandbox.platform_url("matrix")
    with pytest.raises(ConnectRefused, match=message) as refused:
        await matrix.CONNECTOR.sign_in(context(http), {"homeserver": homeserver, **inputs})
    assert refused.value.field == f"inputs.{field}"
    assert "not-it" not in refused.value.message


async def test_matrix_revoked_app_and_a_homeserver_that_is_not_one(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    homeserver = sandbox.platform_url("matrix")
    ctx = context(http)
    [target] = await matrix.CONNECTOR.sign_in(ctx, {"homeserver": homeserver, **MATRIX_LOGIN})
    revoke_app(sandbox, "matrix", ME)
    with pytest.raises(ConnectRefused, match="does not accept the access token"):
        await matrix.CONNECTOR.verify(ctx, target)
    elsewhere = {"homeserver": sandbox.platform_url("slack"), **MATRIX_LOGIN}
    with pytest.raises(ConnectRefused, match="not answer as a Matrix homeserver") as refused:
        await matrix.CONNECTOR.sign_in(ctx, elsewhere)
    assert refused.value.field == "inputs.homeserver"


async def test_the_consent_page_is_a_form_a_person_submits(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    """With `connect_consent` "ask" (the default) the authorize URL shows Allow and Deny; the
    form's answer is the redirect back to us with the code, or access_denied."""
    flow, inputs = await mastodon_flow(sandbox, http)
    for decision in ("approve", "deny"):
        page = await http.get(flow.url)
        assert page.status_code == 200 and "Allow" in page.text and "Deny" in page.text
        consent = re.search(r'name="consent" value="([^"]+)"', page.text)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert consent is not None and action is not None
        answer = await http.post(
            f"{sandbox.url}{action.group(1)}",
            data={"consent": consent.group(1), "decision": decision},
        )
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["state"] == [flow.state]
        if decision == "approve":
            grant = await flow.grant(query["code"][0])
            [target] = await mastodon.CONNECTOR.targets(flow.ctx, grant, inputs)
            assert (await mastodon.CONNECTOR.verify(flow.ctx, target)).handle == target.handle
        else:
            assert query["error"] == ["access_denied"]
