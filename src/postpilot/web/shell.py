"""The pages still to come: each says what it will hold, inside the real layout and roles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postpilot.core.roles import Permission
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(include_in_schema=False)

PLACEHOLDERS: dict[str, tuple[str, Permission, str]] = {
    "attention": (
        "Attention",
        Permission.READ,
        "Everything to act on: unknown deliveries, failures, accounts to reconnect and firing "
        "alerts, each with its action at hand.",
    ),
    "accounts": (
        "Accounts",
        Permission.READ,
        "Connect buttons per platform, each account's state and token expiry, reconnect and "
        "disconnect.",
    ),
    "dashboard": (
        "Dashboard",
        Permission.READ,
        "Charts of processing time, statements per pass, cache hit rate, errors, throughput "
        "and lateness; alert history; the scheduler's knobs for admins.",
    ),
}


def _placeholder(request: Request, signed: SignedIn, name: str) -> Response:
    title, needs, coming = PLACEHOLDERS[name]
    auth.require(signed, needs)
    return page(request, "placeholder.html", signed, title=title, coming=coming)


@router.get("/attention")
async def attention(request: Request, signed: Member) -> Response:
    return _placeholder(request, signed, "attention")


@router.get("/accounts")
async def accounts(request: Request, signed: Member) -> Response:
    return _placeholder(request, signed, "accounts")


@router.get("/dashboard")
async def dashboard(request: Request, signed: Member) -> Response:
    return _placeholder(request, signed, "dashboard")
