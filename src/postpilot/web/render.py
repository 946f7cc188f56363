"""Rendering a page: the layout's context (navigation by role, the CSRF token) and templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from postpilot.core.roles import Permission, allows
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth, csrf

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Pages are the user's own and may show a secret once (an API key, an invitation link): not kept
# by caches, not framed by another site, no referrer carrying an invitation's token away, and
# only the app's own scripts and styles (htmx adds one <style> for its indicators).
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
}


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    needs: Permission


NAVIGATION = (
    NavItem("/calendar", "Calendar", Permission.READ),
    NavItem("/compose", "Compose", Permission.WRITE_POSTS),
    NavItem("/attention", "Attention", Permission.READ),
    NavItem("/accounts", "Accounts", Permission.READ),
    NavItem("/dashboard", "Dashboard", Permission.READ),
    NavItem("/settings", "Settings", Permission.READ),
)


def page(
    request: Request,
    template: str,
    signed: SignedIn | None,
    *,
    title: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page of the layout; anonymous pages get a pre-session cookie for their forms' token."""
    settings = auth.runtime_of(request).settings
    seed = auth.csrf_seed(request, signed)
    new_seed = None
    if seed is None:
        seed = new_seed = csrf.new_seed()
    nav = [] if signed is None else [n for n in NAVIGATION if allows(signed.role, n.needs)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "signed": signed,
            "nav": nav,
            "current": request.url.path,
            "csrf": csrf.token_for(auth.secret_key(settings), seed),
            "csrf_field": csrf.FIELD,
            "workspaces": getattr(request.state, "workspaces", []),
            **context,
        },
        status_code=status,
        headers=HEADERS,
    )
    if new_seed is not None:
        auth.set_cookie(response, csrf.PRE_SESSION_COOKIE, new_seed, settings, max_age=86_400)
    return response
