"""Signing in and out, the first-run page, and invitation links."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot import passwords
from postpilot.core.roles import Role
from postpilot.store import users, web_sessions, workspaces
from postpilot.store.tables import User
from postpilot.web import auth
from postpilot.web.calendar import browser_zone
from postpilot.web.deps import AnonymousForm, DbSession, MaybeSignedIn, Member
from postpilot.web.render import page

router = APIRouter(include_in_schema=False)

HOME = "/calendar"
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=passwords.MAX_LENGTH)]


def go(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("/")
async def home(session: DbSession, signed: MaybeSignedIn) -> Response:
    if signed is not None:
        return go(HOME)
    return go("/login" if await users.any_user(session) else "/setup")


@router.get("/login")
async def login_page(request: Request, session: DbSession, signed: MaybeSignedIn) -> Response:
    if signed is not None:
        return go(HOME)
    if not await users.any_user(session):
        return go("/setup")
    return page(request, "login.html", None, title="Sign in")


@router.post("/login", dependencies=[AnonymousForm])
async def login(request: Request, email: Email, password: Password) -> Response:
    runtime = auth.runtime_of(request)
    settings = runtime.settings
    now = runtime.now()
    ip = auth.client_address(request)
    window = timedelta(seconds=settings.LOGIN_RATE_WINDOW_SECONDS)

    def refused(status: int, message: str) -> Response:
        return page(
            request, "login.html", None, title="Sign in", status=status, error=message, email=email
        )

    async with runtime.db.transaction() as session:
        minutes = await auth.wait_minutes(session, settings, email=email, ip=ip, now=now)
        if minutes is not None:
            return refused(
                429,
                f"Too many failed sign-ins for this email or from this address: "
                f"try again in {minutes} minutes.",
            )
        user = await users.user_by_email(session, email)
        ok = await passwords.verify_in_thread(user.password_hash if user else None, password)
        if user is None or not ok:
            await web_sessions.record_failure(session, email=email, ip=ip, now=now)
            return refused(401, "The email or password is wrong.")
        membership = await users.first_membership(session, user.id)
        if membership is None:
            return refused(
                403, "This account is not a member of any workspace: ask for an invitation."
            )
        await web_sessions.forget_failures(session, email=email, before=now - window)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await passwords.hash_in_thread(password)
        _adopt_browser_zone(request, user)
        return await _start(session, request, user.id, membership.workspace_id)


@router.post("/logout")
async def logout(request: Request, signed: Member) -> Response:
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        await web_sessions.end(session, signed.secret)
    response = go("/login")
    auth.clear_session_cookie(response, runtime.settings)
    return response


@router.post("/workspace")
async def switch_workspace(
    request: Request, signed: Member, workspace_id: Annotated[str, Form(max_length=36)]
) -> Response:
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        if await users.membership(session, signed.user.id, workspace_id) is None:
            raise auth.Refused(404, "not_found", f"no workspace {workspace_id} of yours")
        await web_sessions.move(session, signed.secret, workspace_id)
    return go(HOME)


@router.get("/setup")
async def setup_page(request: Request, session: DbSession) -> Response:
    if await users.any_user(session):
        return go("/login")
    return page(request, "setup.html", None, title="Set up postpilot")


@router.post("/setup", dependencies=[AnonymousForm])
async def setup(
    request: Request,
    email: Email,
    password: Password,
    workspace: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    runtime = auth.runtime_of(request)

    def refused(status: int, message: str) -> Response:
        return page(
            request,
            "setup.html",
            None,
            title="Set up postpilot",
            status=status,
            error=message,
            email=email,
            workspace=workspace,
        )

    if problem := passwords.problem(password):
        return refused(422, f"Password: {problem}.")
    try:
        email = users.normalize_email(email)
    except users.InvalidEmail as exc:
        return refused(422, f"Email: {exc}.")
    password_hash = await passwords.hash_in_thread(password)  # before the write transaction
    async with runtime.db.transaction() as session:
        # Shown only while no user exists: once the first owner is made, this page is gone.
        # The guard row first: of two submissions at the same instant, one makes the owner.
        if not await users.claim_first_run(session, runtime.now()) or await users.any_user(session):
            return go("/login")
        created = await workspaces.create_workspace(session, name=workspace.strip())
        user = await users.create_user(
            session, email=email, password_hash=password_hash, now=runtime.now()
        )
        _adopt_browser_zone(request, user)
        await users.add_membership(
            session,
            user=user,
            workspace_id=created.workspace.id,
            role=Role.OWNER,
            actor=f"user:{user.email}",
            now=runtime.now(),
        )
        secret = await web_sessions.start(
            session,
            user_id=user.id,
            workspace_id=created.workspace.id,
            now=runtime.now(),
            lifetime=timedelta(hours=runtime.settings.SESSION_LIFETIME_HOURS),
        )
        signed = await web_sessions.signed_in(session, secret, runtime.now())
    response = page(request, "setup_done.html", signed, title="Ready", api_key=created.api_key)
    auth.set_session_cookie(response, secret, runtime.settings)
    return response


@router.get("/invite/{token}")
async def invitation_page(request: Request, token: str, session: DbSession) -> Response:
    invitation = await users.open_invitation(session, token, auth.runtime_of(request).now())
    if invitation is None:
        return _invalid_invitation(request)
    existing = await users.user_by_email(session, invitation.email)
    return page(
        request,
        "invite.html",
        None,
        title="Join a workspace",
        invitation=invitation,
        existing=existing is not None,
    )


@router.post("/invite/{token}", dependencies=[AnonymousForm])
async def accept_invitation(request: Request, token: str, password: Password) -> Response:
    runtime = auth.runtime_of(request)
    now = runtime.now()
    async with runtime.db.transaction() as session:
        invitation = await users.open_invitation(session, token, now)
        if invitation is None:
            return _invalid_invitation(request)
        user = await users.user_by_email(session, invitation.email)

        def refused(status: int, message: str) -> Response:
            return page(
                request,
                "invite.html",
                None,
                title="Join a workspace",
                status=status,
                invitation=invitation,
                existing=user is not None,
                error=message,
            )

        if user is None:
            if problem := passwords.problem(password):
                return refused(422, f"Password: {problem}.")
        elif not await passwords.verify_in_thread(user.password_hash, password):
            return refused(401, "The password is wrong.")
        # Single use: the conditional UPDATE lets one request through, whatever the race.
        if not await users.use_invitation(session, invitation, now):
            return _invalid_invitation(request)
        if user is None:
            user = await users.create_user(
                session,
                email=invitation.email,
                password_hash=await passwords.hash_in_thread(password),
                now=now,
            )
        _adopt_browser_zone(request, user)
        # A member since the invitation was made keeps the role they have.
        if await users.membership(session, user.id, invitation.workspace_id) is None:
            await users.add_membership(
                session,
                user=user,
                workspace_id=invitation.workspace_id,
                role=Role(invitation.role),
                actor=f"invitation:{invitation.id}",
                now=now,
            )
        return await _start(session, request, user.id, invitation.workspace_id)


def _invalid_invitation(request: Request) -> Response:
    return page(
        request,
        "message.html",
        None,
        title="Invitation not valid",
        status=404,
        message="This invitation link is not valid: it was already used, it expired, or it "
        "was copied incompletely. Ask whoever invited you for a new one.",
    )


def _adopt_browser_zone(request: Request, user: User) -> None:
    """At a first sign-in the user's time zone becomes the browser's (its pp_tz cookie); a user
    without either keeps following the browser (or UTC) until they choose one."""
    if user.timezone is None and (zone := browser_zone(request)):
        user.timezone = zone


async def _start(
    session: AsyncSession, request: Request, user_id: str, workspace_id: str
) -> Response:
    runtime = auth.runtime_of(request)
    secret = await web_sessions.start(
        session,
        user_id=user_id,
        workspace_id=workspace_id,
        now=runtime.now(),
        lifetime=timedelta(hours=runtime.settings.SESSION_LIFETIME_HOURS),
    )
    response = go(HOME)
    auth.set_session_cookie(response, secret, runtime.settings)
    return response
