"""Mastodon: the person names their instance; we register an app there through its apps API
(the service caches it per instance), then run the OAuth code flow on that instance, with PKCE
where the instance says it supports it (4.3+). Tokens do not expire and have no refresh token;
disconnecting revokes the token at the instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from postpilot.connect.base import (
    App,
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
    json_object,
    server_url,
)

CLIENT_NAME = "postpilot"
WEBSITE = "https://github.com/postpilot/postpilot"
# Post with media, and the verify call (`profile` on 4.3+, which older servers ignore).
SCOPES = ("write:statuses", "write:media", "profile")
NEEDED = ("write:statuses", "write:media")
INSTANCE = "inputs.instance"


def instance_of(inputs: Mapping[str, str]) -> str:
    return server_url(inputs.get("instance"), field=INSTANCE, what="The Mastodon instance")


def _error_text(body: Mapping[str, Any]) -> str:
    text = body.get("error_description") or body.get("error") or "no reason given"
    return str(text)[:300]


class MastodonConnector:
    platform: ClassVar[str] = "mastodon"
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = (
        Input("instance", "Your Mastodon server, e.g. mastodon.social."),
    )
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = False  # registered per instance by register_app
    scopes: ClassVar[tuple[str, ...]] = SCOPES
    pkce: ClassVar[bool] = True

    def app_key(self, inputs: Mapping[str, str]) -> str:
        return instance_of(inputs)

    async def register_app(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> App:
        base = instance_of(inputs)
        response = await call(
            ctx,
            "POST",
            f"{base}/api/v1/apps",
            who=f"The instance {base}",
            field=INSTANCE,
            data={
                "client_name": CLIENT_NAME,
                "redirect_uris": ctx.redirect_uri,
                "scopes": " ".join(SCOPES),
                "website": WEBSITE,
            },
        )
        body = json_object(response)
        if response.status_code != 200 or not body.get("client_id"):
            raise ConnectRefused(
                f"{base} refused to register postpilot as an app "
                f"(HTTP {response.status_code}: {_error_text(body)}); is it a Mastodon instance?",
                INSTANCE,
            )
        secret = body.get("client_secret")
        return App(client_id=str(body["client_id"]), client_secret=str(secret) if secret else None)

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
            f"{instance_of(inputs)}/oauth/authorize",
            client_id=app.client_id,
            redirect_uri=ctx.redirect_uri,
            scope=" ".join(SCOPES),
            state=state,
            code_challenge=code_challenge,
            force_login="true",  # a second account of the same instance gets its own login
        )

    async def exchange(
        self,
        ctx: ConnectContext,
        *,
        code: str,
        code_verifier: str | None,
        inputs: Mapping[str, str],
    ) -> Grant:
        base = instance_of(inputs)
        app = app_of(ctx, self.platform)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app.client_id,
            "client_secret": app.client_secret or "",
            "redirect_uri": ctx.redirect_uri,
            "scope": " ".join(SCOPES),
        }
        if code_verifier and await self._supports_pkce(ctx, base):
            form["code_verifier"] = code_verifier
        who = f"The instance {base}"
        response = await call(ctx, "POST", f"{base}/oauth/token", who=who, data=form)
        body = json_object(response)
        if response.status_code == 401:
            raise ConnectRefused(
                f"{base} no longer knows postpilot's app registration ({_error_text(body)}); "
                "start again",
                INSTANCE,
            )
        if response.status_code != 200 or not body.get("access_token"):
            raise ConnectRefused(
                f"{base} refused the authorization code: it was already used, has expired or "
                f"was issued for another app or address; start again ({_error_text(body)})",
                "code",
            )
        granted = tuple(str(body.get("scope") or "").split())
        if missing := [s for s in NEEDED if granted and s not in granted]:
            raise ConnectRefused(
                f"{base} did not grant {', '.join(missing)}, which posting needs; start again "
                "and allow them",
                "scope",
            )
        return Grant(access_token=str(body["access_token"]), scopes=granted, extra={"base": base})

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        base = instance_of(inputs)
        account = await self._me(ctx, base, grant.access_token, field="code")
        return [
            Target(
                platform_id=str(account["id"]),
                name=str(account.get("display_name") or account.get("username") or ""),
                handle=_handle(account, base),
                credentials={"access_token": grant.access_token},
                base_url=base,
            )
        ]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        base = server_url(target.base_url, field="base_url", what="The Mastodon instance")
        token = str(target.credentials.get("access_token") or "")
        account = await self._me(ctx, base, token, field="credentials.access_token")
        return Identity(platform_id=str(account["id"]), handle=_handle(account, base))

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        """Revoke the token at the account's instance: the service passes the instance as
        `ctx.base_url` and its cached app registration as `ctx.app`."""
        base = server_url(ctx.base_url, field="base_url", what="The Mastodon instance")
        app = app_of(ctx, self.platform)
        response = await call(
            ctx,
            "POST",
            f"{base}/oauth/revoke",
            who=f"The instance {base}",
            data={
                "client_id": app.client_id,
                "client_secret": app.client_secret or "",
                "token": str(credentials.get("access_token") or ""),
            },
        )
        if response.status_code != 200:
            raise ConnectRefused(
                f"{base} did not revoke the token ({_error_text(json_object(response))})",
                "credentials.access_token",
            )

    async def _supports_pkce(self, ctx: ConnectContext, base: str) -> bool:
        """4.3+ describes itself (with S256); older instances answer 404 and ignore PKCE."""
        response = await call(
            ctx,
            "GET",
            f"{base}/.well-known/oauth-authorization-server",
            who=f"The instance {base}",
        )
        methods = json_object(response).get("code_challenge_methods_supported") or []
        return response.status_code == 200 and "S256" in methods

    async def _me(self, ctx: ConnectContext, base: str, token: str, field: str) -> dict[str, Any]:
        response = await call(
            ctx,
            "GET",
            f"{base}/api/v1/accounts/verify_credentials",
            who=f"The instance {base}",
            headers={"Authorization": f"Bearer {token}"},
        )
        body = json_object(response)
        if response.status_code == 401:
            raise ConnectRefused(
                f"{base} does not accept the account's token ({_error_text(body)}): the app "
                "was revoked or the token is invalid; reconnect",
                field,
            )
        if response.status_code != 200 or not body.get("id"):
            raise ConnectRefused(
                f"{base} refused to say whose account this is (HTTP {response.status_code}: "
                f"{_error_text(body)})",
                field,
            )
        return body


def _handle(account: Mapping[str, Any], base: str) -> str:
    host = urlsplit(base).netloc
    return f"@{account.get('username') or account.get('acct')}@{host}"


CONNECTOR = MastodonConnector()
