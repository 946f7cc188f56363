"""The sandbox's OAuth 2.0 authorization server, shared by every platform that has a code flow:
an authorize page with a consent step (a person or a browser test clicks Allow or Deny), codes
that are single use and expire, the exact redirect URI, and PKCE (S256 or plain) checked when the
code is redeemed. Each platform's router mounts the authorize page at its own path and answers
its token call in its own words; what is common is here.

How the consent step answers is a sandbox setting, `connect_consent`: "ask" shows the page,
"approve" and "deny" answer at once (for tests and the demo, which have no person to click).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from postpilot.sandbox.state import SandboxState

DECIDE_PATH = "/_sandbox/oauth/decide"


@dataclass
class Code:
    """An authorization code the sandbox issued, and what it was issued for."""

    platform: str
    client_id: str
    redirect_uri: str
    scope: str
    subject: str  # who consented
    code_challenge: str | None
    challenge_method: str | None
    expires_at: float
    used: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # what the authorize call carried


@dataclass
class Redeemed:
    code: Code


@dataclass
class Refused:
    """Why a code was not redeemed: `reason` is one of "invalid_code", "used_code",
    "expired_code", "redirect_mismatch", "client_mismatch", "pkce" (the platform words it)."""

    reason: str


class AuthorizationServer:
    """Codes and pending consents of every platform, kept in the sandbox state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.codes: dict[str, Code] = {}
        self.pending: dict[str, dict[str, str]] = {}  # consent id -> authorize parameters
        state.on_reset.append(self.clear)

    def clear(self) -> None:
        self.codes.clear()
        self.pending.clear()

    def authorize(
        self, request: Request, platform: str, *, extra: Mapping[str, Any] | None = None
    ) -> Response:
        """The authorize endpoint: check the request, then ask (or answer, per the setting)."""
        params = dict(request.query_params)
        redirect_uri = params.get("redirect_uri", "")
        if not params.get("client_id") or not _absolute(redirect_uri):
            return HTMLResponse(
                "<h1>Invalid request</h1><p>client_id and an absolute redirect_uri are needed.</p>",
                400,
            )
        if not self.client_allows(params["client_id"], redirect_uri):
            return HTMLResponse("<h1>Invalid redirect_uri</h1>", 400)
        params["_platform"] = platform
        params.update({f"_extra_{k}": str(v) for k, v in (extra or {}).items()})
        consent = self.state.settings.connect_consent
        if consent in ("approve", "deny"):
            return self.decide_now(params, approve=consent == "approve")
        consent_id = secrets.token_urlsafe(16)
        self.pending[consent_id] = params
        return HTMLResponse(_consent_page(consent_id, platform, params))

    def client_allows(self, client_id: str, redirect_uri: str) -> bool:
        """A registered client (sandbox setting `oauth_clients`) must use one of its redirect
        URIs; a client the sandbox does not know is accepted with any."""
        client = self.state.settings.oauth_clients.get(client_id)
        return client is None or redirect_uri in client.get("redirect_uris", [])

    def client_secret_ok(self, client_id: str, secret: str | None) -> bool:
        client = self.state.settings.oauth_clients.get(client_id)
        return client is None or not client.get("secret") or client.get("secret") == secret

    def decide_now(self, params: Mapping[str, str], *, approve: bool) -> Response:
        redirect_uri = params["redirect_uri"]
        answer: dict[str, str] = {}
        if approve:
            code = secrets.token_urlsafe(24)
            platform = params["_platform"]
            ttl = self.state.settings.code_ttl_seconds.get(platform, 600.0)
            self.codes[code] = Code(
                platform=platform,
                client_id=params["client_id"],
                redirect_uri=redirect_uri,
                scope=params.get("scope", ""),
                subject=self.state.settings.connect_subject,
                code_challenge=params.get("code_challenge"),
                challenge_method=params.get("code_challenge_method"),
                expires_at=time.time() + ttl,
                extra={
                    k.removeprefix("_extra_"): v
                    for k, v in params.items()
                    if k.startswith("_extra_")
                },
            )
            answer["code"] = code
        else:
            answer["error"] = "access_denied"
            answer["error_description"] = "The user denied the request."
        if "state" in params:
            answer["state"] = params["state"]
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(answer)}", 302)

    async def decide(self, request: Request) -> Response:
        """The consent page's form: Allow or Deny."""
        form = await request.form()
        params = self.pending.pop(str(form.get("consent", "")), None)
        if params is None:
            return HTMLResponse("<h1>This consent request has expired.</h1>", 400)
        return self.decide_now(params, approve=form.get("decision") == "approve")

    def redeem(
        self,
        platform: str,
        code: str | None,
        *,
        client_id: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> Redeemed | Refused:
        """Spend a code: it must be this platform's, unused, unexpired, for the same client and
        the same redirect URI, and match its PKCE challenge when it had one."""
        found = self.codes.get(code or "")
        if found is None or found.platform != platform:
            return Refused("invalid_code")
        if found.used:
            return Refused("used_code")
        found.used = True  # a failed redemption spends the code too, as platforms do
        if found.expires_at <= time.time():
            return Refused("expired_code")
        if client_id is not None and client_id != found.client_id:
            return Refused("client_mismatch")
        if redirect_uri != found.redirect_uri:
            return Refused("redirect_mismatch")
        if found.code_challenge is not None and not _pkce_matches(found, code_verifier):
            return Refused("pkce")
        return Redeemed(found)


def server(request: Request) -> AuthorizationServer:
    """The sandbox app's authorization server (made once by `create_app`)."""
    found: AuthorizationServer = request.app.state.oauth
    return found


def _pkce_matches(code: Code, verifier: str | None) -> bool:
    if not verifier:
        return False
    if (code.challenge_method or "plain").upper() == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        expected = verifier
    return secrets.compare_digest(expected, code.code_challenge or "")


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _consent_page(consent_id: str, platform: str, params: Mapping[str, str]) -> str:
    app = html.escape(params["client_id"])
    scopes = html.escape(params.get("scope", "") or "(none)")
    who = html.escape(params["redirect_uri"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {app} - {platform} sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>{platform} sandbox</h1>
<p>The app <strong>{app}</strong> asks to act for your account with: <code>{scopes}</code>.</p>
<p>You will be sent back to <code>{who}</code>.</p>
<form method="post" action="{DECIDE_PATH}">
<input type="hidden" name="consent" value="{consent_id}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></main></body></html>"""
