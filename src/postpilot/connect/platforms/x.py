"""X: OAuth 2.0 authorization code with PKCE (S256) and `offline.access`, so the account gets a
refresh token that rotates on every use; confidential clients authenticate with Basic auth.
Verify is `GET /2/users/me`; disconnect revokes the refresh token (its grant goes with it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

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
from postpilot.connect.platforms import _calls

AUTHORIZE_HOST = "https://x.com"
API_HOST = "https://api.x.com"
# Posting with images needs media.write; offline.access gives the refresh token.
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")


class XConnector:
    platform: ClassVar[str] = "x"
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = True
    scopes: ClassVar[tuple[str, ...]] = SCOPES
    pkce: ClassVar[bool] = True

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str:
        return _calls.authorize_url(
            ctx.url(AUTHORIZE_HOST, "/i/oauth2/authorize"),
            client_id=_app(ctx).client_id,
            redirect_uri=ctx.redirect_uri,
            scope=" ".join(SCOPES),
            state=state,
            code_challenge=code_challenge,
        )

    async def exchange(
        self,
        ctx: ConnectContext,
        *,
        code: str,
        code_verifier: str | None,
        inputs: Mapping[str, str],
    ) -> Grant:
        app = _app(ctx)
        response = await _token_call(
            ctx,
            app,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": ctx.redirect_uri,
                "code_verifier": code_verifier or "",
            },
        )
        body = _calls.json_object(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise _refused_code(response, body)
        granted = tuple(str(body.get("scope") or "").split())
        if missing := [s for s in SCOPES if s not in granted]:
            raise ConnectRefused(
                f"X did not grant the scope {', '.join(missing)}: connect again and allow "
                "everything postpilot asks for"
            )
        return Grant(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            expires_at=_calls.expires_at(ctx, body.get("expires_in")),
            scopes=granted,
        )

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        user = await _me(ctx, grant.access_token)
        app = _app(ctx)
        credentials: dict[str, Any] = {
            "access_token": grant.access_token,
            "client_id": app.client_id,
        }
        if grant.refresh_token:
            credentials["refresh_token"] = grant.refresh_token
        if app.client_secret:  # the publisher refreshes with Basic auth, as confidential
            credentials["client_secret"] = app.client_secret
        return [
            Target(
                platform_id=str(user["id"]),
                name=str(user.get("name") or user["username"]),
                handle=str(user["username"]),
                credentials=credentials,
                expires_at=grant.expires_at,
            )
        ]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        user = await _me(ctx, str(target.credentials.get("access_token") or ""))
        if target.platform_id and str(user["id"]) != target.platform_id:
            raise ConnectRefused(
                f"these credentials belong to the X user @{user['username']}, not to this "
                "account: sign in to X as the account's user and connect again",
                "credentials.access_token",
            )
        return Identity(platform_id=str(user["id"]), handle=str(user["username"]))

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        """Revoke the refresh token (X ends the grant) and the access token."""
        app = App(
            str(credentials.get("client_id") or _app(ctx).client_id),
            credentials.get("client_secret") or (ctx.app.client_secret if ctx.app else None),
        )
        for kind in ("refresh_token", "access_token"):
            if token := credentials.get(kind):
                response = await _post(ctx, app, "/2/oauth2/revoke", {"token": str(token)})
                if response.status_code != 200:
                    raise ConnectRefused(f"X refused to revoke the {kind.replace('_', ' ')}")


def _app(ctx: ConnectContext) -> App:
    return _calls.app_of(ctx, "x")


async def _token_call(ctx: ConnectContext, app: App, form: dict[str, str]) -> httpx.Response:
    return await _post(ctx, app, "/2/oauth2/token", form)


async def _post(ctx: ConnectContext, app: App, path: str, form: dict[str, str]) -> httpx.Response:
    """A form POST as X's OAuth endpoints take it: Basic auth for a confidential client, the
    client id in the body for a public one."""
    auth = httpx.BasicAuth(app.client_id, app.client_secret) if app.client_secret else None
    return await _calls.call(
        ctx,
        "POST",
        ctx.url(API_HOST, path),
        who="X",
        data={**form, "client_id": app.client_id},
        auth=auth or httpx.USE_CLIENT_DEFAULT,
    )


async def _me(ctx: ConnectContext, token: str) -> dict[str, Any]:
    response = await _calls.call(
        ctx,
        "GET",
        ctx.url(API_HOST, "/2/users/me"),
        who="X",
        headers={"Authorization": f"Bearer {token}"},
    )
    data = _calls.json_object(response).get("data")
    if response.status_code == 401:
        raise ConnectRefused(
            "X did not accept the access token: it was revoked (the app was removed from the "
            "account) or has expired; connect the account again",
            "credentials.access_token",
        )
    if response.status_code != 200 or not isinstance(data, dict) or not data.get("id"):
        raise ConnectRefused(f"X did not say who the account is (HTTP {response.status_code})")
    return data


def _refused_code(response: httpx.Response, body: dict[str, Any]) -> ConnectRefused:
    description = str(body.get("error_description") or body.get("error") or "")
    if response.status_code == 401 or body.get("error") == "unauthorized_client":
        return ConnectRefused(
            "X refused the app's credentials: check the configured X client id and secret"
        )
    if "code verifier" in description:
        return ConnectRefused(
            "X refused the PKCE code verifier: the flow was not started here; start again"
        )
    if "authorization code" in description:
        return ConnectRefused(
            "X refused the authorization code: it was already used, has expired (X allows 30 "
            "seconds) or was issued for another redirect URI; start again"
        )
    return ConnectRefused(
        f"X refused the token request ({description or f'HTTP {response.status_code}'})"
    )


CONNECTOR = XConnector()
