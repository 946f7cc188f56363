"""Discord posts through a channel webhook, connected one of two ways:

- the person pastes a webhook URL they made in the channel's Integrations settings; we check it
  with `GET /api/webhooks/{id}/{token}` and keep its id and token;
- or OAuth2 with the `webhook.incoming` scope: Discord asks the person for a server and channel
  and the token reply carries a new webhook made for our app. The webhook needs no OAuth token
  afterwards, so only the webhook is kept.

Disconnecting deletes a webhook our app made through OAuth (its `application_id` is our client
id): that ends what the authorization gave. A webhook the person pasted is theirs, perhaps used
by other tools too, so it is left alone; they delete it in Discord if they want it gone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Grant,
    Identity,
    Input,
    Method,
    Target,
)
from postpilot.connect.platforms._calls import (
    app_of,
    authorize_url,
    call,
    expires_at,
    json_object,
)

DISCORD = "https://discord.com"
DISCORD_HOSTS = frozenset(
    {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
)
WEBHOOK_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/(\d{5,25})/([A-Za-z0-9_.-]{10,200})/?$")
SCOPE = "webhook.incoming"
WEBHOOK_URL = "inputs.webhook_url"


def _webhook_url(webhook_id: str, token: str) -> str:
    return f"/api/webhooks/{webhook_id}/{token}"


class DiscordConnector:
    platform: ClassVar[str] = "discord"
    methods: ClassVar[tuple[Method, ...]] = (Method.DIRECT, Method.OAUTH)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = (
        Input(
            "webhook_url",
            "The channel's webhook URL (Channel settings > Integrations > Webhooks > Copy URL).",
            secret=True,
        ),
    )
    needs_app: ClassVar[bool] = True  # for the OAuth way; a pasted webhook needs none
    scopes: ClassVar[tuple[str, ...]] = (SCOPE,)
    pkce: ClassVar[bool] = False  # documented only for the Social SDK

    async def sign_in(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> list[Target]:
        webhook_id, token = self._parse(ctx, inputs.get("webhook_url") or "")
        webhook = await self._webhook(ctx, webhook_id, token, WEBHOOK_URL)
        return [_target(webhook, token)]

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str:
        app = app_of(ctx, self.platform)
        return authorize_url(
            ctx.url(DISCORD, "/oauth2/authorize"),
            client_id=app.client_id,
            redirect_uri=ctx.redirect_uri,
            scope=SCOPE,
            state=state,
            code_challenge=None,
        )

    async def exchange(
        self,
        ctx: ConnectContext,
        *,
        code: str,
        code_verifier: str | None,
        inputs: Mapping[str, str],
    ) -> Grant:
        app = app_of(ctx, self.platform)
        response = await call(
            ctx,
            "POST",
            ctx.url(DISCORD, "/api/oauth2/token"),
            who="Discord",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": ctx.redirect_uri,
            },
            auth=httpx.BasicAuth(app.client_id, app.client_secret or ""),
        )
        body = json_object(response)
        webhook = body.get("webhook")
        if response.status_code == 401:
            raise ConnectRefused(
                "Discord does not accept the deployment's app (CONNECT_DISCORD_CLIENT_ID and "
                "CONNECT_DISCORD_CLIENT_SECRET)",
                None,
            )
        if response.status_code != 200 or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.status_code
            raise ConnectRefused(
                f"Discord refused the authorization code ({reason}): it was already used or "
                "has expired; start again",
                "code",
            )
        if not isinstance(webhook, dict) or not webhook.get("id") or not webhook.get("token"):
            raise ConnectRefused(
                "Discord's answer carries no webhook: allow the webhook for a channel", "scope"
            )
        refresh = body.get("refresh_token")
        return Grant(
            access_token=str(body["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            expires_at=expires_at(ctx, body.get("expires_in")),
            scopes=tuple(str(body.get("scope") or "").split()),
            extra={"webhook": webhook},
        )

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        webhook: dict[str, Any] = grant.extra["webhook"]
        return [_target(webhook, str(webhook["token"]))]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        webhook_id, token = _parts(target.credentials)
        webhook = await self._webhook(ctx, webhook_id, token, "credentials.webhook_token")
        return Identity(platform_id=str(webhook["id"]), handle=str(webhook.get("name") or ""))

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        """Delete the webhook when our app made it (OAuth); leave a pasted one alone."""
        if ctx.app is None:
            return
        webhook_id, token = _parts(credentials)
        url = ctx.url(DISCORD, _webhook_url(webhook_id, token))
        found = await call(ctx, "GET", url, who="Discord")
        if found.status_code != 200:
            return  # already gone
        if str(json_object(found).get("application_id") or "") != ctx.app.client_id:
            return
        response = await call(ctx, "DELETE", url, who="Discord")
        if response.status_code not in (204, 404):
            raise ConnectRefused(
                f"Discord did not delete the webhook (HTTP {response.status_code})"
            )

    def _parse(self, ctx: ConnectContext, url: str) -> tuple[str, str]:
        """(id, token) of a pasted webhook URL: Discord's hosts, or the configured base."""
        parts = urlsplit(url.strip())
        on_base = ctx.base_url is not None and url.strip().startswith(ctx.base_url)
        match = WEBHOOK_PATH.search(parts.path)
        on_discord = parts.scheme == "https" and (parts.hostname or "") in DISCORD_HOSTS
        if match is None or not (on_discord or on_base):
            raise ConnectRefused(
                "This is not a Discord webhook URL: it looks like "
                "https://discord.com/api/webhooks/<id>/<token>",
                WEBHOOK_URL,
            )
        return match.group(1), match.group(2)

    async def _webhook(
        self, ctx: ConnectContext, webhook_id: str, token: str, field: str
    ) -> dict[str, Any]:
        response = await call(
            ctx, "GET", ctx.url(DISCORD, _webhook_url(webhook_id, token)), who="Discord"
        )
        body = json_object(response)
        if response.status_code == 200 and body.get("id"):
            return body
        message = body.get("message") or f"HTTP {response.status_code}"
        code = body.get("code")
        if code == 10015 or response.status_code == 404:
            raise ConnectRefused(
                f"Discord does not know this webhook ({message}, {code}): it was deleted or the "
                "URL is incomplete; copy it again from the channel's Integrations settings",
                field,
            )
        if code == 50027 or response.status_code == 401:
            raise ConnectRefused(
                f"Discord refused the webhook's token ({message}, {code}); copy the URL again",
                field,
            )
        raise ConnectRefused(f"Discord could not check the webhook ({message})", field)


def _parts(credentials: Mapping[str, Any]) -> tuple[str, str]:
    webhook_id, token = credentials.get("webhook_id"), credentials.get("webhook_token")
    if webhook_id and token:
        return str(webhook_id), str(token)
    match = WEBHOOK_PATH.search(urlsplit(str(credentials.get("webhook_url") or "")).path)
    if match is None:
        raise ConnectRefused("The account has no webhook", "credentials.webhook_url")
    return match.group(1), match.group(2)


def _target(webhook: Mapping[str, Any], token: str) -> Target:
    name = str(webhook.get("name") or "webhook")
    options = {key: str(webhook[key]) for key in ("guild_id", "channel_id") if webhook.get(key)}
    return Target(
        platform_id=str(webhook["id"]),
        name=f"{name} (channel {options.get('channel_id', '?')})",
        handle=name,
        credentials={"webhook_id": str(webhook["id"]), "webhook_token": token},
        options=options,
    )


CONNECTOR = DiscordConnector()
