"""Dependencies: the runtime, a DB session per request, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api.errors import ApiError
from postpilot.crypto import same_secret
from postpilot.runtime import ServiceRuntime
from postpilot.store import api_keys
from postpilot.store.tables import Workspace

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


async def current_caller(
    session: SessionDep, credentials: Credentials, runtime: RuntimeDep
) -> api_keys.Caller:
    if credentials is None:
        raise _unauthorized(
            "send your API key as `Authorization: Bearer pp_...` "
            "(create one with `postpilot workspace create`)"
        )
    # Looked up on every request, never cached: a revoked key is refused at once.
    caller = await api_keys.authenticate(session, credentials.credentials)
    if caller is None:
        raise _unauthorized("the API key is not valid or was revoked")
    now = runtime.now()
    if api_keys.needs_touch(caller.key, now):
        await api_keys.touch(session, caller.key, now)
        await session.commit()
    return caller


CallerDep = Annotated[api_keys.Caller, Depends(current_caller)]


async def current_workspace(caller: CallerDep) -> Workspace:
    return caller.workspace


async def current_actor(caller: CallerDep) -> str:
    """Who activity says made a change: the key's prefix and id."""
    return caller.actor


WorkspaceDep = Annotated[Workspace, Depends(current_workspace)]
ActorDep = Annotated[str, Depends(current_actor)]


def require_cron_secret(runtime: RuntimeDep, credentials: Credentials) -> None:
    expected = runtime.settings.CRON_SECRET
    if not expected:
        raise ApiError(503, "cron_disabled", "cron endpoints are off: set CRON_SECRET to use them")
    if credentials is None or not same_secret(credentials.credentials, expected):
        raise _unauthorized("send `Authorization: Bearer <CRON_SECRET>`")
