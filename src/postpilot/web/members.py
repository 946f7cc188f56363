"""The workspace settings page: members (invite, change role, remove) and API keys (create,
shown once; list; revoke). Ids of another workspace are answered 404, like unknown ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from postpilot.core.roles import Permission, Role, allows, may_assign
from postpilot.store import api_keys, users
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/settings", include_in_schema=False)
ROLES = [r.value for r in reversed(Role)]


async def _settings_page(
    request: Request, signed: SignedIn, *, status: int = 200, **shown: Any
) -> Response:
    runtime = auth.runtime_of(request)
    async with runtime.db.session() as session:
        people = await users.members(session, signed.workspace.id)
        invitations = (
            await users.pending_invitations(session, signed.workspace.id, runtime.now())
            if allows(signed.role, Permission.MANAGE_MEMBERS)
            else []
        )
        keys = (
            await api_keys.list_keys(session, signed.workspace.id)
            if allows(signed.role, Permission.MANAGE_KEYS)
            else []
        )
    return page(
        request,
        "settings.html",
        signed,
        title="Settings",
        status=status,
        members=people,
        invitations=invitations,
        keys=keys,
        roles=ROLES,
        can_members=allows(signed.role, Permission.MANAGE_MEMBERS),
        can_keys=allows(signed.role, Permission.MANAGE_KEYS),
        can_owners=allows(signed.role, Permission.MANAGE_OWNERS),
        **shown,
    )


def _back() -> RedirectResponse:
    return RedirectResponse("/settings", status_code=303)


@router.get("")
async def settings_page(request: Request, signed: Member) -> Response:
    return await _settings_page(request, signed)


@router.post("/invitations")
async def invite(
    request: Request,
    signed: Member,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[Role, Form()],
) -> Response:
    auth.require(signed, Permission.MANAGE_MEMBERS)
    if not may_assign(signed.role, None, role):
        return await _settings_page(
            request, signed, status=403, error=f"Only an owner can invite an {role}."
        )
    runtime = auth.runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            created = await users.create_invitation(
                session,
                workspace_id=signed.workspace.id,
                email=email,
                role=role,
                actor=signed.actor,
                now=runtime.now(),
                lifetime=timedelta(hours=runtime.settings.INVITATION_LIFETIME_HOURS),
            )
    except users.InvalidEmail as exc:
        return await _settings_page(request, signed, status=422, error=f"Email: {exc}.")
    except users.AlreadyMember as exc:
        return await _settings_page(request, signed, status=409, error=f"{exc}.")
    link = f"{runtime.settings.PUBLIC_BASE_URL}/invite/{created.token}"
    return await _settings_page(request, signed, invite_link=link, invited=created.invitation)


@router.post("/members/{user_id}/role")
async def change_role(
    request: Request, signed: Member, user_id: str, role: Annotated[Role, Form()]
) -> Response:
    return await _change_member(request, signed, user_id, role)


@router.post("/members/{user_id}/remove")
async def remove(request: Request, signed: Member, user_id: str) -> Response:
    return await _change_member(request, signed, user_id, None)


async def _change_member(
    request: Request, signed: SignedIn, user_id: str, role: Role | None
) -> Response:
    """Give a member `role`, or remove them (`None`): owners only touch owners, the last owner
    stays."""
    auth.require(signed, Permission.MANAGE_MEMBERS)
    runtime = auth.runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            found = await users.membership(session, user_id, signed.workspace.id)
            if found is None:
                raise users.NotAMember()
            if not may_assign(signed.role, Role(found.role), role):
                what = "remove an owner" if role is None else "make or unmake an owner"
                raise auth.Refused(403, "forbidden", f"only an owner can {what}")
            if role is None:
                await users.remove_member(
                    session,
                    workspace_id=signed.workspace.id,
                    user_id=user_id,
                    actor=signed.actor,
                    now=runtime.now(),
                )
            else:
                await users.change_role(
                    session,
                    workspace_id=signed.workspace.id,
                    user_id=user_id,
                    role=role,
                    actor=signed.actor,
                    now=runtime.now(),
                )
    except users.NotAMember as exc:
        raise auth.Refused(404, "not_found", f"no member {user_id} in this workspace") from exc
    except users.LastOwner as exc:
        return await _settings_page(request, signed, status=409, error=str(exc))
    return _back()


@router.post("/keys")
async def create_key(
    request: Request, signed: Member, name: Annotated[str, Form(min_length=1, max_length=200)]
) -> Response:
    auth.require(signed, Permission.MANAGE_KEYS)
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        new = await api_keys.create_key(
            session,
            workspace_id=signed.workspace.id,
            name=name.strip(),
            actor=signed.actor,
            now=runtime.now(),
        )
    return await _settings_page(request, signed, new_key=new.secret, new_key_name=new.key.name)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, signed: Member, key_id: str) -> Response:
    auth.require(signed, Permission.MANAGE_KEYS)
    runtime = auth.runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            await api_keys.revoke_key(
                session,
                workspace_id=signed.workspace.id,
                key_id=key_id,
                actor=signed.actor,
                now=runtime.now(),
            )
    except api_keys.KeyNotFound as exc:
        raise auth.Refused(404, "not_found", f"no API key {key_id} in this workspace") from exc
    except api_keys.KeyRefused as exc:
        return await _settings_page(request, signed, status=409, error=str(exc))
    return _back()
