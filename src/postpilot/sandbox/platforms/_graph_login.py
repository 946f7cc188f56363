"""Facebook Login as the sandbox speaks it, for Facebook Pages and Instagram with Facebook Login:
the dialog (the shared consent step), the code and `fb_exchange_token` grants, `/me`,
`/me/permissions`, `/me/accounts` with a Page token per Page, `/debug_token`, and
`DELETE /{user-id}/permissions`. Every token is the platform's own (`/facebook/...` issues
Facebook tokens, `/instagram/...` Instagram ones) so its publisher accepts it afterwards.

Who signs in is the consent step's subject; the Pages they manage come from the sandbox setting
`connect_pages`, or are derived from the subject."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _graph, _kit, _oauth
from postpilot.sandbox.state import SandboxState

SHORT_LIVED_SECONDS = 3600
LONG_LIVED_SECONDS = 5_184_000  # 60 days
ALL_TASKS = ("ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE")
CODE_REFUSALS = {  # _oauth.Refused reason -> (message, subcode)
    "used_code": ("This authorization code has been used.", 36009),
    "expired_code": ("This authorization code has expired.", 36007),
    "redirect_mismatch": (
        "Error validating verification code. Please make sure your redirect_uri is identical "
        "to the one you used in the OAuth dialog request",
        36008,
    ),
}


@dataclass
class Issued:
    """What the sandbox remembers of a token it issued through the login."""

    subject: str
    granted: list[str]
    declined: list[str] = field(default_factory=list)
    long_lived: bool = False
    page_id: str | None = None  # a Page token: the Page it acts as


def user_id(subject: str) -> str:
    return _graph.numeric_id("facebook-user", subject)


class MetaLogin:
    def __init__(self, graph: _graph.Graph) -> None:
        self.graph = graph
        self.state: SandboxState = graph.state
        self.platform = graph.platform
        self.issued: dict[str, Issued] = {}
        self.state.on_reset.append(self.issued.clear)

    def pages(self, subject: str) -> list[dict[str, Any]]:
        """The Pages `subject` manages: [{"id", "name", "tasks", "instagram"?}]."""
        configured = self.state.settings.connect_pages.get(subject)
        if configured is not None:
            return [{"tasks": list(ALL_TASKS), **page} for page in configured]
        name = subject.replace("-", " ").title()
        return [
            {
                "id": _graph.numeric_id("page", subject, "1"),
                "name": f"{name} Page",
                "tasks": list(ALL_TASKS),
                "instagram": _graph.numeric_id("instagram", subject, "1"),
            },
            {
                "id": _graph.numeric_id("page", subject, "2"),
                "name": f"{name} Shop",
                "tasks": list(ALL_TASKS),
            },
        ]

    def page(self, subject: str, page_id: str) -> dict[str, Any] | None:
        return next((p for p in self.pages(subject) if str(p["id"]) == page_id), None)

    def instagram_account(self, subject: str, ig_user_id: str) -> dict[str, Any] | None:
        """The Instagram professional account `ig_user_id` linked to one of the subject's
        Pages, as `GET /{ig-user-id}` answers it."""
        for page in self.pages(subject):
            if str(page.get("instagram") or "") == ig_user_id:
                handle = f"{subject}.{page['id']}"[-30:]
                return {"id": ig_user_id, "username": handle, "name": page["name"]}
        return None

    def routes(self, api: APIRouter) -> None:
        """Add the login's endpoints to a platform's router (before its generic paths)."""
        api.add_api_route("/{version}/dialog/oauth", self.dialog, methods=["GET"])
        api.add_api_route(
            "/{version}/oauth/access_token", self.access_token, methods=["GET", "POST"]
        )
        api.add_api_route("/{version}/me", self.me, methods=["GET"])
        api.add_api_route("/{version}/me/permissions", self.permissions, methods=["GET"])
        api.add_api_route("/{version}/me/accounts", self.accounts, methods=["GET"])
        api.add_api_route("/{version}/debug_token", self.debug_token, methods=["GET"])
        api.add_api_route("/{version}/{user}/permissions", self.remove_app, methods=["DELETE"])

    async def dialog(self, request: Request) -> Response:
        return _oauth.server(request).authorize(request, self.platform)

    async def access_token(self, request: Request) -> Response:
        values = await _kit.body(request)  # GET query or POSTed form, both seen
        client_id = str(values.get("client_id") or "")
        if not client_id:
            return _graph.error(self.state, "Missing client_id parameter.", 101)
        oauth = _oauth.server(request)
        if not oauth.client_secret_ok(client_id, str(values.get("client_secret") or "")):
            return _graph.error(self.state, "Error validating client secret.", 1)
        if values.get("grant_type") == "fb_exchange_token":
            return self.exchange(str(values.get("fb_exchange_token") or ""))
        if not values.get("code"):
            return _graph.error(self.state, "Missing authorization code", 100)
        outcome = oauth.redeem(
            self.platform,
            str(values["code"]),
            client_id=client_id,
            redirect_uri=str(values.get("redirect_uri") or ""),
            code_verifier=None,
        )
        if isinstance(outcome, _oauth.Refused):
            message, subcode = CODE_REFUSALS.get(
                outcome.reason, ("Invalid verification code format.", None)
            )
            return _graph.error(self.state, message, 100, subcode)
        asked = [s for s in outcome.code.scope.replace(",", " ").split() if s]
        declined = self.state.settings.connect_declined_scopes.get(self.platform, [])
        return self.grant(
            Issued(
                outcome.code.subject,
                granted=[s for s in asked if s not in declined],
                declined=[s for s in asked if s in declined],
            ),
            SHORT_LIVED_SECONDS,
        )

    def exchange(self, short: str) -> Response:
        """`fb_exchange_token`: a short-lived user token for a 60-day one."""
        status = self.state.check_token(self.platform, short)
        found = self.issued.get(short)
        if status == "expired":
            return _graph.expired(self.state)
        if status != "ok" or found is None or found.page_id is not None:
            return _graph.error(
                self.state, "Invalid OAuth access token - Cannot parse access token", 190
            )
        long = Issued(found.subject, list(found.granted), list(found.declined), long_lived=True)
        return self.grant(long, LONG_LIVED_SECONDS)

    def grant(self, issued: Issued, seconds: int) -> Response:
        tokens = self.state.issue_tokens(
            self.platform, issued.subject, expires_in=seconds, refresh=False
        )
        self.issued[tokens["access_token"]] = issued
        return JSONResponse(
            {
                "access_token": tokens["access_token"],
                "token_type": "bearer",
                "expires_in": tokens["expires_in"],
            }
        )

    async def caller(self, request: Request) -> tuple[str, Issued | None] | Response:
        """The token's subject and what the login issued it as (None: not through the login)."""
        allowed = await self.graph.guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        token = self.graph.token_of(request, allowed[1])
        return allowed[0], self.issued.get(token or "")

    async def me(self, request: Request) -> Response:
        found = await self.caller(request)
        if isinstance(found, Response):
            return found
        subject, issued = found
        if issued is not None and issued.page_id is not None:
            page = self.page(subject, issued.page_id)
            if page is None:
                return _graph.revoked(self.state)
            return JSONResponse({"id": str(page["id"]), "name": page["name"]})
        return JSONResponse({"id": user_id(subject), "name": subject.replace("-", " ").title()})

    async def permissions(self, request: Request) -> Response:
        found = await self.caller(request)
        if isinstance(found, Response):
            return found
        _subject, issued = found
        granted, declined = (issued.granted, issued.declined) if issued else ([], [])
        data = [{"permission": p, "status": "granted"} for p in granted]
        data += [{"permission": p, "status": "declined"} for p in declined]
        return JSONResponse({"data": data})

    async def accounts(self, request: Request) -> Response:
        """The Pages the user manages, each with a Page token: one that never expires when
        read with a long-lived user token, one hour otherwise."""
        found = await self.caller(request)
        if isinstance(found, Response):
            return found
        subject, issued = found
        if issued is not None and issued.page_id is not None:
            return _graph.error(
                self.state, "(#100) Tried accessing nonexisting field (accounts)", 100
            )
        wanted = set(str(request.query_params.get("fields") or "id,name").split(","))
        long_lived = issued is None or issued.long_lived
        data = []
        for page in self.pages(subject):
            tokens = self.state.issue_tokens(
                self.platform,
                subject,
                expires_in=0 if long_lived else SHORT_LIVED_SECONDS,
                refresh=False,
            )
            granted = issued.granted if issued else []
            self.issued[tokens["access_token"]] = Issued(
                subject, list(granted), long_lived=long_lived, page_id=str(page["id"])
            )
            entry: dict[str, Any] = {
                "id": str(page["id"]),
                "name": page["name"],
                "access_token": tokens["access_token"],
                "tasks": page["tasks"],
            }
            if page.get("instagram"):
                entry["instagram_business_account"] = {"id": str(page["instagram"])}
            data.append({k: v for k, v in entry.items() if k in wanted | {"id"}})
        return JSONResponse({"data": data, "paging": {"cursors": {"before": "MA", "after": "MQ"}}})

    async def debug_token(self, request: Request) -> Response:
        """`input_token` inspected with an app token `{app-id}|{app-secret}` (or a user's)."""
        params = request.query_params
        app_id, _, secret = str(params.get("access_token") or "").partition("|")
        oauth = _oauth.server(request)
        if not secret or not oauth.client_secret_ok(app_id, secret):
            return _graph.error(self.state, "Invalid OAuth access token signature.", 190)
        token = str(params.get("input_token") or "")
        issued = self.issued.get(token)
        known = self.state.tokens.get(token)
        if issued is None or known is None or self.state.check_token(self.platform, token) != "ok":
            return JSONResponse(
                {
                    "data": {
                        "app_id": app_id,
                        "is_valid": False,
                        "error": {"code": 190, "message": "The access token is invalid."},
                    }
                }
            )
        data: dict[str, Any] = {
            "app_id": app_id,
            "type": "PAGE" if issued.page_id else "USER",
            "application": "postpilot",
            "expires_at": int(known.expires_at or 0),
            "is_valid": True,
            "scopes": issued.granted,
            "user_id": user_id(issued.subject),
        }
        if issued.page_id:
            data["profile_id"] = issued.page_id
        return JSONResponse({"data": data})

    async def remove_app(self, user: str, request: Request) -> Response:
        """`DELETE /{user-id}/permissions`: every token of the user for this app ends."""
        found = await self.caller(request)
        if isinstance(found, Response):
            return found
        subject, issued = found
        if issued is not None and issued.page_id is not None:
            return _graph.error(self.state, "(#100) A user access token is required", 100)
        if user not in ("me", user_id(subject)):
            return _graph.error(self.state, "(#200) Permissions error", 200)
        for token, known in self.state.tokens.items():
            if known.platform == self.platform and known.subject == subject:
                self.state.revoked_tokens.add(token)
        return JSONResponse({"success": True})
