"""Facebook Login, shared by the Facebook Pages and Instagram connectors: the dialog, the code
traded for a short-lived user token and that one for a 60-day token (`fb_exchange_token`), the
granted permissions (`/me/permissions`), the Pages the user manages with a Page token each
(`/me/accounts`), and Graph errors read into refusals a person can act on.

Token calls are POSTed (as mixpost does) so the app secret and the code stay out of URLs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from postpilot.connect.base import ConnectContext, ConnectRefused, Grant, Input, Method
from postpilot.connect.platforms import _calls
from postpilot.publishers import graph
from postpilot.publishers.facebook import DEFAULT_VERSION

DIALOG_HOST = "https://www.facebook.com"
GRAPH_HOST = "https://graph.facebook.com"
MAX_PAGES = 20  # of /me/accounts, 100 Pages each


class FacebookLogin:
    """What the Facebook and Instagram connectors share: the login dialog and the code
    exchange, with each platform's scopes and name."""

    platform: ClassVar[str]
    name: ClassVar[str]  # the platform as people write it, for messages
    scopes: ClassVar[tuple[str, ...]]
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = True
    pkce: ClassVar[bool] = False  # Facebook Login's PKCE is for its OIDC flow only

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str:
        return dialog_url(ctx, self.platform, self.scopes, state)

    async def exchange(
        self,
        ctx: ConnectContext,
        *,
        code: str,
        code_verifier: str | None,
        inputs: Mapping[str, str],
    ) -> Grant:
        return await login(ctx, self.platform, code, self.scopes, self.name)


def dialog_url(ctx: ConnectContext, platform: str, scopes: Sequence[str], state: str) -> str:
    return _calls.authorize_url(
        ctx.url(DIALOG_HOST, f"/{DEFAULT_VERSION}/dialog/oauth"),
        client_id=_calls.app_of(ctx, platform).client_id,
        redirect_uri=ctx.redirect_uri,
        scope=",".join(scopes),  # Facebook Login takes them comma-separated
        state=state,
        code_challenge=None,
    )


def graph_url(ctx: ConnectContext, path: str) -> str:
    return ctx.url(GRAPH_HOST, f"/{DEFAULT_VERSION}/{path.lstrip('/')}")


async def login(
    ctx: ConnectContext, platform: str, code: str, required: Sequence[str], who: str
) -> Grant:
    """The code for a 60-day user token, refused when a permission in `required` is missing."""
    app = _calls.app_of(ctx, platform)
    form = {"client_id": app.client_id, "client_secret": app.client_secret or ""}
    short = await _token(
        ctx,
        who,
        {
            **form,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": ctx.redirect_uri,
        },
    )
    long = await _token(
        ctx,
        who,
        {**form, "grant_type": "fb_exchange_token", "fb_exchange_token": short["access_token"]},
    )
    token = str(long["access_token"])
    permissions = await get(ctx, who, token, "/me/permissions")
    granted = tuple(
        str(p.get("permission"))
        for p in permissions.get("data") or []
        if isinstance(p, dict) and p.get("status") == "granted"
    )
    if missing := [p for p in required if p not in granted]:
        raise ConnectRefused(
            f"{who} was not granted the permission {', '.join(missing)}: connect again and "
            "keep every permission postpilot asks for"
        )
    return Grant(
        access_token=token,
        expires_at=_calls.expires_at(ctx, long.get("expires_in")),
        scopes=granted,
    )


async def pages(ctx: ConnectContext, who: str, token: str, fields: str) -> list[dict[str, Any]]:
    """Every Page the user manages (`/me/accounts`, following `paging.next`)."""
    found: list[dict[str, Any]] = []
    url: str | None = graph_url(ctx, "/me/accounts")
    params: dict[str, str] | None = {"fields": fields, "limit": "100"}
    for _ in range(MAX_PAGES):
        if url is None:
            break
        body = await _read(ctx, who, token, url, params)
        found += [p for p in body.get("data") or [] if isinstance(p, dict) and p.get("id")]
        following = (body.get("paging") or {}).get("next")
        url, params = (str(following), None) if following else (None, None)
    return found


async def get(
    ctx: ConnectContext, who: str, token: str, path: str, **params: str
) -> dict[str, Any]:
    return await _read(ctx, who, token, graph_url(ctx, path), params)


async def _read(
    ctx: ConnectContext, who: str, token: str, url: str, params: dict[str, str] | None
) -> dict[str, Any]:
    response = await _calls.call(
        ctx,
        "GET",
        url,
        who=who,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    body = _calls.json_object(response)
    if response.status_code != 200:
        raise refusal(response, who)
    return body


async def _token(ctx: ConnectContext, who: str, form: dict[str, str]) -> dict[str, Any]:
    response = await _calls.call(
        ctx, "POST", graph_url(ctx, "/oauth/access_token"), who=who, data=form
    )
    body = _calls.json_object(response)
    if response.status_code != 200 or not body.get("access_token"):
        raise refusal(response, who)
    return body


def refusal(
    response: httpx.Response, who: str, field: str = "credentials.access_token"
) -> ConnectRefused:
    """A Graph error as a person reads it."""
    error = graph.error_of(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    detail = graph.describe(response)
    if code == 100 and subcode == 36009:
        return ConnectRefused(
            f"{who} refused the authorization code: it was already used; start again"
        )
    if code == 100 and subcode == 36007:
        return ConnectRefused(f"{who} refused the authorization code: it has expired; start again")
    if code == 100 and subcode == 36008:
        return ConnectRefused(
            f"{who} refused the authorization code: it was issued for another redirect URI; "
            "start again"
        )
    if code == 1 and "client secret" in detail:
        return ConnectRefused(
            f"{who} refused the app's credentials: check the configured Meta app id and secret"
        )
    if code in graph.TOKEN_CODES:
        return ConnectRefused(
            f"{who} did not accept the token ({detail}): the app was removed or the token "
            "expired; connect the account again",
            field,
        )
    return ConnectRefused(f"{who} refused the request ({detail})")
