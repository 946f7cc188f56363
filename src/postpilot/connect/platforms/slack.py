"""Slack: "Add to Slack" (OAuth v2) installs the deployment's app in a workspace and gives a bot
token; the person then picks one or several channels, each becoming an account that posts there.
With token rotation turned on for the app, the token lasts 12 h and comes with a single-use
refresh token, which the publisher uses with the app's id and secret. Slack answers errors with
HTTP 200 and `{"ok": false, "error": ...}`; disconnecting calls `auth.revoke`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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

SLACK = "https://slack.com"  # the consent page and, under /api, the Web API
SCOPES = ("chat:write", "chat:write.public", "channels:read", "groups:read", "files:write")
NEEDED = ("chat:write", "channels:read")
PAGES = 20  # conversations.list pages read at most (200 channels each)
TOKEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
APP_ERRORS = frozenset({"invalid_client_id", "bad_client_secret", "invalid_client"})


def _api(ctx: ConnectContext, method: str) -> str:
    return ctx.url(SLACK, f"/api/{method}")


class SlackConnector:
    platform: ClassVar[str] = "slack"
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = True
    scopes: ClassVar[tuple[str, ...]] = SCOPES
    pkce: ClassVar[bool] = False  # unconfirmed for bot installs

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
            ctx.url(SLACK, "/oauth/v2/authorize"),
            client_id=app.client_id,
            redirect_uri=ctx.redirect_uri,
            scope=",".join(SCOPES),  # Slack's bot scopes are comma-separated
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
            _api(ctx, "oauth.v2.access"),
            who="Slack",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": ctx.redirect_uri,
                "client_id": app.client_id,
                "client_secret": app.client_secret or "",
            },
        )
        body = json_object(response)
        if body.get("ok") is not True or not body.get("access_token"):
            error = str(body.get("error") or f"HTTP {response.status_code}")
            if error in APP_ERRORS:
                raise ConnectRefused(
                    f"Slack does not accept the deployment's app ({error}): check "
                    "CONNECT_SLACK_CLIENT_ID and CONNECT_SLACK_CLIENT_SECRET"
                )
            if error == "bad_redirect_uri":
                raise ConnectRefused(
                    "Slack refused the redirect URI (bad_redirect_uri): register "
                    f"{ctx.redirect_uri} in the app's OAuth settings"
                )
            raise ConnectRefused(
                f"Slack refused the authorization code ({error}): it was already used or has "
                "expired; start again",
                "code",
            )
        granted = tuple(s for s in str(body.get("scope") or "").split(",") if s)
        if missing := [s for s in NEEDED if s not in granted]:
            raise ConnectRefused(
                f"Slack did not grant {', '.join(missing)}, which posting needs; install again "
                "and allow them",
                "scope",
            )
        refresh = body.get("refresh_token")
        team = body.get("team") if isinstance(body.get("team"), dict) else {}
        return Grant(
            access_token=str(body["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            expires_at=expires_at(ctx, body.get("expires_in")),
            scopes=granted,
            extra={"team": team, "bot_user_id": body.get("bot_user_id")},
        )

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        """Every channel the bot can post to: public ones (chat:write.public) and private
        ones it was invited to."""
        team: Mapping[str, Any] = grant.extra.get("team") or {}
        team_id, team_name = str(team.get("id") or ""), str(team.get("name") or "Slack")
        credentials: dict[str, Any] = {"access_token": grant.access_token}
        if grant.refresh_token and ctx.app is not None:  # rotation: the publisher refreshes
            credentials |= {
                "refresh_token": grant.refresh_token,
                "client_id": ctx.app.client_id,
                "client_secret": ctx.app.client_secret,
            }
        channels = await self._channels(ctx, grant.access_token)
        return [
            Target(
                platform_id=f"{team_id}:{channel['id']}",
                name=f"#{channel.get('name')} ({team_name})",
                handle=f"#{channel.get('name')}",
                credentials=dict(credentials),
                options={"channel": str(channel["id"])},
                expires_at=grant.expires_at,
            )
            for channel in channels
            if not channel.get("is_archived") and channel.get("id")
        ]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        token = str(target.credentials.get("access_token") or "")
        body = await self._method(ctx, "auth.test", token, "GET")
        channel = str(target.options.get("channel") or "")
        return Identity(
            platform_id=f"{body.get('team_id') or ''}:{channel}",
            handle=f"{body.get('user') or 'bot'} in {body.get('team') or 'Slack'}",
        )

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        token = str(credentials.get("access_token") or "")
        try:
            await self._method(ctx, "auth.revoke", token, "POST")
        except ConnectRefused as refused:
            if "token_revoked" not in refused.message and "invalid_auth" not in refused.message:
                raise  # a token already dead needs no revoking

    async def _channels(self, ctx: ConnectContext, token: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(PAGES):
            params = {
                "types": "public_channel,private_channel",
                "exclude_archived": "true",
                "limit": "200",
            }
            if cursor:
                params["cursor"] = cursor
            body = await self._method(ctx, "conversations.list", token, "GET", params=params)
            found += [c for c in body.get("channels") or [] if isinstance(c, dict)]
            cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return found

    async def _method(
        self,
        ctx: ConnectContext,
        method: str,
        token: str,
        http_method: str,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await call(
            ctx,
            http_method,
            _api(ctx, method),
            who="Slack",
            headers={"Authorization": f"Bearer {token}"},
            params=params,
        )
        body = json_object(response)
        if body.get("ok") is True:
            return body
        error = str(body.get("error") or f"HTTP {response.status_code}")
        if error in TOKEN_ERRORS:
            raise ConnectRefused(
                f"Slack does not accept the bot token ({error}): the app was removed from the "
                "workspace or the token was revoked; reconnect",
                "credentials.access_token",
            )
        if error == "missing_scope":
            raise ConnectRefused(
                f"Slack says the app lacks a scope for {method} (needed: {body.get('needed')})",
                "scope",
            )
        raise ConnectRefused(f"Slack refused {method} ({error})", "credentials.access_token")


CONNECTOR = SlackConnector()
