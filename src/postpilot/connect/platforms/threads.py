"""Threads: its own OAuth code flow (the Threads app id and secret, not the Facebook ones), the
1-hour token traded for a 60-day one (`th_exchange_token`; the publisher refreshes it with
`th_refresh_token`), the granted scopes read from `debug_token`, and `GET /v1.0/me` as the
live check. Threads offers no revoke endpoint."""

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
from postpilot.connect.platforms import _calls, _meta

NAME = "Threads"
AUTHORIZE_HOST = "https://threads.com"
GRAPH_HOST = "https://graph.threads.net"
VERSION = "v1.0"
SCOPES = ("threads_basic", "threads_content_publish")


class ThreadsConnector:
    platform: ClassVar[str] = "threads"
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = True
    scopes: ClassVar[tuple[str, ...]] = SCOPES
    pkce: ClassVar[bool] = False  # not documented for Threads

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str:
        return _calls.authorize_url(
            ctx.url(AUTHORIZE_HOST, "/oauth/authorize"),
            client_id=_calls.app_of(ctx, self.platform).client_id,
            redirect_uri=ctx.redirect_uri,
            scope=",".join(SCOPES),
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
        app = _calls.app_of(ctx, self.platform)
        short = await _read(
            ctx,
            "POST",
            "/oauth/access_token",
            data={
                "client_id": app.client_id,
                "client_secret": app.client_secret or "",
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": ctx.redirect_uri,
            },
        )
        # Documented as a GET with the token and secret in the query (nothing else is).
        long = await _read(
            ctx,
            "GET",
            "/access_token",
            params={
                "grant_type": "th_exchange_token",
                "client_secret": app.client_secret or "",
                "access_token": str(short.get("access_token") or ""),
            },
        )
        token = str(long.get("access_token") or "")
        if not token:
            raise ConnectRefused("Threads gave no long-lived token")
        debug = await _read(
            ctx,
            "GET",
            f"/{VERSION}/debug_token",
            params={"input_token": token},
            headers=_bearer(token),
        )
        granted = tuple(str(s) for s in (debug.get("data") or {}).get("scopes") or [])
        if missing := [s for s in SCOPES if s not in granted]:
            raise ConnectRefused(
                f"Threads did not grant the permission {', '.join(missing)}: connect again and "
                "keep every permission postpilot asks for"
            )
        return Grant(
            access_token=token,
            expires_at=_calls.expires_at(ctx, long.get("expires_in")),
            scopes=granted,
        )

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        app = _calls.app_of(ctx, self.platform)
        me = await _me(ctx, grant.access_token)
        return [
            Target(
                platform_id=str(me["id"]),
                name=str(me.get("username") or me["id"]),
                handle=str(me.get("username") or me["id"]),
                credentials={"access_token": grant.access_token},
                options={"threads_user_id": str(me["id"]), "app_id": app.client_id},
                expires_at=grant.expires_at,
            )
        ]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        me = await _me(ctx, str(target.credentials.get("access_token") or ""))
        expected = str(target.options.get("threads_user_id") or target.platform_id or "me")
        if expected != "me" and str(me["id"]) != expected:
            raise ConnectRefused(
                f"these credentials belong to the Threads user @{me.get('username')}, not to "
                "this account",
                "credentials.access_token",
            )
        return Identity(platform_id=str(me["id"]), handle=str(me.get("username") or me["id"]))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _me(ctx: ConnectContext, token: str) -> dict[str, Any]:
    me = await _read(
        ctx, "GET", f"/{VERSION}/me", params={"fields": "id,username"}, headers=_bearer(token)
    )
    if not me.get("id"):
        raise ConnectRefused("Threads did not say who the account is")
    return me


async def _read(ctx: ConnectContext, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = await _calls.call(ctx, method, ctx.url(GRAPH_HOST, path), who=NAME, **kwargs)
    if response.status_code != 200:
        raise _meta.refusal(response, NAME)  # Threads answers in the Graph error envelope
    return _calls.json_object(response)


CONNECTOR = ThreadsConnector()
