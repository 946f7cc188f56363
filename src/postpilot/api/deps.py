"""Dependencies: the runtime, a DB session per request, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api.errors import ApiError
from postpilot.crypto import same_secret
from postpilot.scheduler.runtime import Runtime
from postpilot.store import workspaces
from postpilot.store.tables import Workspace

bearer = HTTPBearer(auto_error=False, description="A workspace API key: `Bearer pp_...`.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


async def current_workspace(session: SessionDep, credentials: Credentials) -> Workspace:
    if credentials is None:
        raise _unauthorized(
            "send your API key as `Authorization: Bearer pp_...` "
            "(create one with `postpilot workspace create`)"
        )
    workspace = await workspaces.workspace_for_key(session, credentials.credentials)
    if workspace is None:
        raise _unauthorized("the API key is not valid or was revoked")
    return workspace


WorkspaceDep = Annotated[Workspace, Depends(current_workspace)]


def require_cron_secret(runtime: RuntimeDep, credentials: Credentials) -> None:
    expected = runtime.settings.CRON_SECRET
    if not expected:
        raise ApiError(503, "cron_disabled", "cron endpoints are off: set CRON_SECRET to use them")
    if credentials is None or not same_secret(credentials.credentials, expected):
        raise _unauthorized("send `Authorization: Bearer <CRON_SECRET>`")
