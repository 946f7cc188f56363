"""What the connectors of part C share: calls whose failures become refusals a person can act on,
JSON replies read without trusting their shape, the authorize URL built by authlib, the server
URL a person typed, and expiry times from a platform's lifetimes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

from postpilot.connect.base import App, AppNotConfigured, ConnectContext, ConnectRefused


async def call(
    ctx: ConnectContext,
    method: str,
    url: str,
    *,
    who: str,
    field: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request through the service's client; a server that cannot be reached (or that the
    address check refuses) is a refusal naming `who`, never an exception with a URL inside."""
    try:
        return await ctx.http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ConnectRefused(f"{who} did not answer in time; try again", field) from exc
    except httpx.HTTPError as exc:
        raise ConnectRefused(f"{who} could not be reached ({type(exc).__name__})", field) from exc


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object, or {} when it is not one (an HTML error page, nothing)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def authorize_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    code_challenge: str | None,
    **extra: str,
) -> str:
    """The consent page's URL: the standard code-flow parameters, S256 PKCE when given."""
    pkce = {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return str(
        prepare_grant_uri(
            endpoint,
            client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            **(pkce if code_challenge else {}),
            **extra,
        )
    )


def server_url(value: str | None, *, field: str, what: str) -> str:
    """A server a person named ("mastodon.social", "https://matrix.example.org/") as a base URL
    without a trailing slash; the https scheme when none is given."""
    text = (value or "").strip()
    if not text:
        raise ConnectRefused(f"{what} is needed", field)
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectRefused(f"{what} must be a web address such as https://example.org", field)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConnectRefused(f"{what} must be a plain web address (no query, no login)", field)
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def app_of(ctx: ConnectContext, platform: str) -> App:
    """The deployment's app at the platform, which the service put in the context."""
    if ctx.app is None:
        name = platform.upper()
        raise AppNotConfigured(
            f"{platform} needs the deployment's app: set CONNECT_{name}_CLIENT_ID and "
            f"CONNECT_{name}_CLIENT_SECRET"
        )
    return ctx.app


def expires_at(ctx: ConnectContext, seconds: object) -> datetime | None:
    """When a lifetime in seconds (`expires_in`) ends, from the context's clock."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return ctx.now() + timedelta(seconds=float(seconds))
