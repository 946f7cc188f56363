"""The pages still to come: each says what it will hold, inside the real layout and roles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postpilot.core.roles import Permission
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.render import page

router = APIRouter(include_in_schema=False)

PLACEHOLDERS: dict[str, tuple[str, Permission, str]] = {}


def _placeholder(request: Request, signed: SignedIn, name: str) -> Response:
    title, needs, coming = PLACEHOLDERS[name]
    auth.require(signed, needs)
    return page(request, "placeholder.html", signed, title=title, coming=coming)
