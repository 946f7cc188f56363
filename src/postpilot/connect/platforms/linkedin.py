"""LinkedIn: the 3-legged OAuth 2.0 code flow (no PKCE), 60-day tokens, a refresh token only for
approved partner apps (the same one returned on each refresh). One login posts as the member
(`urn:li:person:{sub}` from OpenID `userinfo`) and as each organization the member administers
(`organizationAcls`); each becomes its own account with `author_urn` set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

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
from postpilot.publishers.linkedin import DEFAULT_VERSION

OAUTH_HOST = "https://www.linkedin.com"
API_HOST = "https://api.linkedin.com"
MEMBER_SCOPES = ("openid", "profile", "w_member_social")
# The Community Management API: post as, and list, the organizations the member administers.
ORGANIZATION_SCOPES = ("r_organization_social", "w_organization_social", "rw_organization_admin")
POSTING_ROLES = frozenset({"ADMINISTRATOR", "CONTENT_ADMINISTRATOR"})
NAME = "LinkedIn"


class LinkedInConnector:
    platform: ClassVar[str] = "linkedin"
    methods: ClassVar[tuple[Method, ...]] = (Method.OAUTH,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = ()
    needs_app: ClassVar[bool] = True
    scopes: ClassVar[tuple[str, ...]] = MEMBER_SCOPES + ORGANIZATION_SCOPES
    pkce: ClassVar[bool] = False  # LinkedIn's support for it is unconfirmed

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str:
        return _calls.authorize_url(
            ctx.url(OAUTH_HOST, "/oauth/v2/authorization"),
            client_id=_calls.app_of(ctx, self.platform).client_id,
            redirect_uri=ctx.redirect_uri,
            scope=" ".join(self.scopes),
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
        response = await _calls.call(
            ctx,
            "POST",
            ctx.url(OAUTH_HOST, "/oauth/v2/accessToken"),
            who=NAME,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": ctx.redirect_uri,
                "client_id": app.client_id,
                "client_secret": app.client_secret or "",
            },
        )
        body = _calls.json_object(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise _refused_code(response, body)
        # LinkedIn writes the granted scopes comma-separated.
        granted = tuple(s for s in str(body.get("scope") or "").replace(",", " ").split() if s)
        if missing := [s for s in MEMBER_SCOPES if s not in granted]:
            raise ConnectRefused(
                f"LinkedIn did not grant the scope {', '.join(missing)}: the app needs the "
                '"Sign In with LinkedIn using OpenID Connect" and "Share on LinkedIn" products'
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
        app = _calls.app_of(ctx, self.platform)
        credentials = _credentials(grant, app)
        member = await _userinfo(ctx, grant.access_token)
        person = f"urn:li:person:{member['sub']}"
        name = str(member.get("name") or member["sub"])
        found = [
            Target(
                platform_id=person,
                name=name,
                handle=name,
                credentials=credentials,
                options={"author_urn": person},
                expires_at=grant.expires_at,
            )
        ]
        if "rw_organization_admin" not in grant.scopes:
            return found  # an app without the Community Management API posts as the member
        for urn in await _administered(ctx, grant.access_token):
            org = await _organization(ctx, grant.access_token, urn)
            found.append(
                Target(
                    platform_id=urn,
                    name=str(org.get("localizedName") or urn),
                    handle=str(org.get("vanityName") or urn),
                    credentials=dict(credentials),
                    options={"author_urn": urn},
                    expires_at=grant.expires_at,
                )
            )
        return found

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        token = str(target.credentials.get("access_token") or "")
        member = await _userinfo(ctx, token)
        person = f"urn:li:person:{member['sub']}"
        author = str(target.options.get("author_urn") or target.platform_id or person)
        if author.startswith("urn:li:person:"):
            if author != person:
                raise ConnectRefused(
                    f"these credentials belong to another LinkedIn member ({person})",
                    "credentials.access_token",
                )
            return Identity(platform_id=person, handle=str(member.get("name") or person))
        if author not in await _administered(ctx, token):
            raise ConnectRefused(
                f"the LinkedIn member is no longer an administrator of {author}: ask an "
                "administrator of the page to give them the role again",
                "options.author_urn",
            )
        org = await _organization(ctx, token, author)
        return Identity(platform_id=author, handle=str(org.get("vanityName") or author))

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        app = _calls.app_of(ctx, self.platform)
        response = await _calls.call(
            ctx,
            "POST",
            ctx.url(OAUTH_HOST, "/oauth/v2/revoke"),
            who=NAME,
            data={
                "client_id": str(credentials.get("client_id") or app.client_id),
                "client_secret": str(credentials.get("client_secret") or app.client_secret or ""),
                "token": str(credentials.get("access_token") or ""),
            },
        )
        if response.status_code != 200:
            raise ConnectRefused(
                f"LinkedIn refused to revoke the token (HTTP {response.status_code})"
            )


def _credentials(grant: Grant, app: App) -> dict[str, Any]:
    """What the publisher reads, including what it needs to refresh (partner apps)."""
    credentials: dict[str, Any] = {"access_token": grant.access_token}
    if grant.refresh_token:
        credentials.update(
            refresh_token=grant.refresh_token,
            client_id=app.client_id,
            client_secret=app.client_secret,
        )
    return credentials


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "LinkedIn-Version": DEFAULT_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }


async def _get(ctx: ConnectContext, token: str, path: str, **params: str) -> dict[str, Any]:
    response = await _calls.call(
        ctx,
        "GET",
        ctx.url(API_HOST, path),
        who=NAME,
        field="credentials.access_token",
        headers=_headers(token),
        params=params,
    )
    body = _calls.json_object(response)
    if response.status_code == 401:
        raise ConnectRefused(
            "LinkedIn did not accept the access token "
            f"({body.get('message') or 'invalid'}): connect the account again",
            "credentials.access_token",
        )
    if response.status_code != 200:
        raise ConnectRefused(
            f"LinkedIn refused {path} ({body.get('message') or f'HTTP {response.status_code}'})"
        )
    return body


async def _userinfo(ctx: ConnectContext, token: str) -> dict[str, Any]:
    member = await _get(ctx, token, "/v2/userinfo")
    if not member.get("sub"):
        raise ConnectRefused("LinkedIn did not say who the member is")
    return member


async def _administered(ctx: ConnectContext, token: str) -> list[str]:
    """The organization URNs where the member holds a role that may post."""
    body = await _get(ctx, token, "/rest/organizationAcls", q="roleAssignee", state="APPROVED")
    return [
        str(element["organization"])
        for element in body.get("elements") or []
        if isinstance(element, dict)
        and element.get("role") in POSTING_ROLES
        and str(element.get("organization") or "").startswith("urn:li:organization:")
    ]


async def _organization(ctx: ConnectContext, token: str, urn: str) -> dict[str, Any]:
    org_id = urn.rsplit(":", 1)[-1]
    return await _get(ctx, token, f"/v2/organizations/{quote(org_id, safe='')}")


def _refused_code(response: httpx.Response, body: dict[str, Any]) -> ConnectRefused:
    description = str(body.get("error_description") or body.get("error") or "")
    if body.get("error") == "invalid_client":
        return ConnectRefused(
            "LinkedIn refused the app's credentials: check the configured LinkedIn client id "
            "and secret"
        )
    if "authorization code not found" in description:
        return ConnectRefused(
            "LinkedIn refused the authorization code: it was already used or is unknown; "
            "start again"
        )
    if "does not match authorization code" in description:
        return ConnectRefused(
            "LinkedIn refused the authorization code: it has expired or was issued for another "
            "redirect URI or app; start again"
        )
    return ConnectRefused(
        f"LinkedIn refused the token request ({description or f'HTTP {response.status_code}'})"
    )


CONNECTOR = LinkedInConnector()
