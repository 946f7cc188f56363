"""A user's own settings ("Your settings"): name and time zone, and changing the password
(which signs out the user's other sessions). Every member has this page, whatever their role."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from postpilot import passwords
from postpilot.core import timezones
from postpilot.store import users, web_sessions
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.calendar import all_zones, browser_zone
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/me", include_in_schema=False)
Password = Annotated[str, Form(max_length=passwords.MAX_LENGTH)]


def _page(request: Request, signed: SignedIn, *, status: int = 200, **shown: Any) -> Response:
    zone = shown.pop("zone", signed.user.timezone or "")
    return page(
        request,
        "me.html",
        signed,
        title="Your settings",
        status=status,
        name=shown.pop("name", signed.user.name or ""),
        zone=zone,
        zones=sorted(all_zones() | ({zone} - {""})),
        browser_zone=browser_zone(request),
        errors=shown.pop("errors", {}),
        min_password=passwords.MIN_LENGTH,
        **shown,
    )


@router.get("")
async def settings_page(request: Request, signed: Member) -> Response:
    return _page(request, signed)


@router.post("")
async def save_settings(
    request: Request,
    signed: Member,
    name: Annotated[str, Form(max_length=200)] = "",
    timezone: Annotated[str, Form(max_length=timezones.MAX_ZONE_NAME)] = "",
) -> Response:
    zone = timezone.strip()
    if zone:
        try:
            zone = timezones.zone(zone).key
        except timezones.InvalidTimeZone as exc:
            return _page(
                request, signed, status=422, name=name, zone=zone, errors={"timezone": str(exc)}
            )
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        await users.update_profile(
            session, signed.user.id, name=name.strip() or None, timezone=zone or None
        )
    return RedirectResponse("/me?saved=1", status_code=303)


@router.post("/password")
async def change_password(
    request: Request, signed: Member, current_password: Password, new_password: Password
) -> Response:
    """The current password first (counted as a failed sign-in when wrong, so this form cannot
    guess faster than the sign-in page), then the new one's rules."""
    runtime = auth.runtime_of(request)
    settings = runtime.settings
    now = runtime.now()
    email, ip = signed.user.email, auth.client_address(request)

    def refused(status: int, field: str, message: str) -> Response:
        return _page(request, signed, status=status, errors={field: message})

    async with runtime.db.transaction() as session:
        minutes = await auth.wait_minutes(session, settings, email=email, ip=ip, now=now)
        if minutes is not None:
            return refused(
                429,
                "current_password",
                f"Too many wrong passwords: try again in {minutes} minutes.",
            )
        if not await passwords.verify_in_thread(signed.user.password_hash, current_password):
            await web_sessions.record_failure(session, email=email, ip=ip, now=now)
            return refused(422, "current_password", "This is not your current password.")
    if problem := passwords.problem(new_password):
        return refused(422, "new_password", f"The new password: {problem}.")
    new_hash = await passwords.hash_in_thread(new_password)
    async with runtime.db.transaction() as session:
        await users.set_password(session, signed.user.id, new_hash)
        ended = await web_sessions.end_all_of(session, signed.user.id, keep=signed.secret)
    return _page(request, signed, password_changed=True, signed_out=ended)
