"""Dependencies: the runtime, a DB session per request, and who is calling.

A caller is a workspace API key (acting with roles.ROLE_OF_API_KEYS) or a person signed in to
the web app (their role in the session's workspace; a state-changing request must carry the
session's CSRF token in `X-CSRF-Token`). Either way, core/roles.py decides what the request
may do, the same rules the web pages follow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api.errors import ApiError
from postpilot.core import roles
from postpilot.crypto import same_secret
from postpilot.runtime import ServiceRuntime
from postpilot.store import api_keys
from postpilot.store.tables import Workspace
from postpilot.web import auth as web_auth

bearer = HTTPBearer(auto_error=False, description="A workspace API key: `Bearer pp_...`.")


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


@dataclass(frozen=True, slots=True)
class Caller:
    workspace: Workspace
    role: roles.Role
    actor: str  # how activity names who made a change


async def current_caller(
    request: Request, session: SessionDep, credentials: Credentials, runtime: RuntimeDep
) -> Caller:
    if credentials is not None:
        caller = await _key_caller(session, credentials.credentials, runtime)
    else:
        caller = await _session_caller(request, session)
    permission = roles.api_permission(request.method, request.scope["path"])
    if not roles.allows(caller.role, permission):
        raise ApiError(403, "forbidden", web_auth.refusal(caller.role, permission))
    return caller


async def _key_caller(session: AsyncSession, secret: str, runtime: ServiceRuntime) -> Caller:
    # Looked up on every request, never cached: a revoked key is refused at once.
    found = await api_keys.authenticate(session, secret)
    if found is None:
        raise _unauthorized("the API key is not valid or was revoked")
    now = runtime.now()
    if api_keys.needs_touch(found.key, now):
        await api_keys.touch(session, found.key, now)
        await session.commit()
    return Caller(workspace=found.workspace, role=roles.ROLE_OF_API_KEYS, actor=found.actor)


async def _session_caller(request: Request, session: AsyncSession) -> Caller:
    signed = await web_auth.signed_in(request, session)
    if signed is None:
        raise _unauthorized(
            "send your API key as `Authorization: Bearer pp_...` "
            "(create one with `postpilot workspace create`), or sign in to the web app"
        )
    try:
        await web_auth.check_csrf(request, signed)
    except web_auth.Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return Caller(workspace=signed.workspace, role=signed.role, actor=signed.actor)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def current_workspace(caller: CallerDep) -> Workspace:
    return caller.workspace


async def current_actor(caller: CallerDep) -> str:
    """Who activity says made a change: the key's prefix and id, or the signed-in user."""
    return caller.actor


WorkspaceDep = Annotated[Workspace, Depends(current_workspace)]
ActorDep = Annotated[str, Depends(current_actor)]


def require_cron_secret(runtime: RuntimeDep, credentials: Credentials) -> None:
    expected = runtime.settings.CRON_SECRET
    if not expected:
        raise ApiError(503, "cron_disabled", "cron endpoints are off: set CRON_SECRET to use them")
    if credentials is None or not same_secret(credentials.credentials, expected):
        raise _unauthorized("send `Authorization: Bearer <CRON_SECRET>`")
