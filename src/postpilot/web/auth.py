"""Who a browser is: the session cookie, its CSRF check, and the role check pages share with
the API (core/roles.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core import proxies, roles
from postpilot.errors import PostpilotError
from postpilot.scheduler.runtime import Runtime
from postpilot.settings import Settings
from postpilot.store import web_sessions
from postpilot.web import csrf

SESSION_COOKIE = "pp_session"


class Refused(PostpilotError):
    """A request the web app refuses: pages answer with an HTML page, other requests with the
    API's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def runtime_of(request: Request) -> Runtime:
    active: Runtime = request.app.state.runtime
    return active


def secret_key(settings: Settings) -> str:
    key = settings.SECRET_KEY
    if not key:  # the runtime refuses to start without one
        raise RuntimeError("SECRET_KEY is not set")
    return key


def cookie_secure(settings: Settings) -> bool:
    if settings.SESSION_COOKIE_SECURE is not None:
        return settings.SESSION_COOKIE_SECURE
    return settings.PUBLIC_BASE_URL.startswith("https://")


async def signed_in(request: Request, session: AsyncSession) -> web_sessions.SignedIn | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    return await web_sessions.signed_in(session, secret, runtime_of(request).now())


def client_address(request: Request) -> str:
    """The address a request comes from, as the sign-in rate limit counts it: behind one of
    TRUSTED_PROXIES, the client's from X-Forwarded-For."""
    peer = request.client.host if request.client else "unknown"
    trusted = runtime_of(request).settings.trusted_proxies
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


async def wait_minutes(
    session: AsyncSession, settings: Settings, *, email: str, ip: str, now: datetime
) -> int | None:
    """How long to wait, in minutes, when this email or this address has spent its wrong
    passwords in the window (sign-in and password change count alike); None while it may try."""
    since = now - timedelta(seconds=settings.LOGIN_RATE_WINDOW_SECONDS)
    failures = await web_sessions.failures_since(session, email=email, ip=ip, since=since)
    if (
        failures.by_email < settings.LOGIN_RATE_LIMIT
        and failures.by_ip < settings.LOGIN_RATE_LIMIT_PER_IP
    ):
        return None
    return max(1, settings.LOGIN_RATE_WINDOW_SECONDS // 60)


def set_cookie(response: Response, name: str, value: str, settings: Settings, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=cookie_secure(settings),
        samesite="lax",
        path="/",
    )


def set_session_cookie(response: Response, secret: str, settings: Settings) -> None:
    lifetime = timedelta(hours=settings.SESSION_LIFETIME_HOURS)
    set_cookie(response, SESSION_COOKIE, secret, settings, int(lifetime.total_seconds()))


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=cookie_secure(settings), samesite="lax"
    )


def csrf_seed(request: Request, signed: web_sessions.SignedIn | None) -> str | None:
    return signed.secret if signed else request.cookies.get(csrf.PRE_SESSION_COOKIE)


async def check_csrf(request: Request, signed: web_sessions.SignedIn | None) -> None:
    """Refuse (403) a state-changing request without the right token, before anything else."""
    if request.method in csrf.SAFE_METHODS:
        return
    # The form's field first: a page swapped in by htmx keeps the <body> (and its header token)
    # of the page before, which a sign-in makes stale.
    given = request.headers.get(csrf.HEADER)
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(csrf.FIELD)
        given = value if isinstance(value, str) else given
    settings = runtime_of(request).settings
    if not csrf.valid(secret_key(settings), csrf_seed(request, signed), given):
        raise Refused(
            403,
            "csrf_failed",
            "the form's security token is missing or out of date: reload the page and try again",
        )


def require(signed: web_sessions.SignedIn, permission: roles.Permission) -> None:
    if not roles.allows(signed.role, permission):
        raise Refused(403, "forbidden", refusal(signed.role, permission))


def refusal(role: roles.Role, permission: roles.Permission) -> str:
    needed = roles.least_role(permission)
    return f"this needs the {needed} role or above; your role in this workspace is {role}"
