"""/api/keys: the workspace's API keys. A secret is shown once, when it is created or rotated."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError
from postpilot.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from postpilot.core.timezones import as_utc
from postpilot.store import api_keys
from postpilot.store.tables import ApiKey

router = APIRouter(prefix="/api/keys", tags=["keys"])


def public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        active=key.revoked_at is None,
        created_at=as_utc(key.created_at),
        last_used_at=as_utc(key.last_used_at) if key.last_used_at else None,
        revoked_at=as_utc(key.revoked_at) if key.revoked_at else None,
    )


def created(new: api_keys.NewKey, replaces: str | None = None) -> ApiKeyCreated:
    return ApiKeyCreated(**public(new.key).model_dump(), secret=new.secret, replaces=replaces)


def refused(exc: api_keys.KeyRefused) -> ApiError:
    if isinstance(exc, api_keys.KeyNotFound):
        return ApiError(404, "not_found", str(exc))
    code = "last_active_key" if isinstance(exc, api_keys.LastActiveKey) else "key_revoked"
    return ApiError(409, code, str(exc))


@router.get("", response_model=list[ApiKeyPublic])
async def list_keys(workspace: WorkspaceDep, session: SessionDep) -> list[ApiKeyPublic]:
    return [public(k) for k in await api_keys.list_keys(session, workspace.id)]


@router.post("", status_code=201, response_model=ApiKeyCreated)
async def create_key(
    body: ApiKeyCreate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ApiKeyCreated:
    new = await api_keys.create_key(
        session, workspace_id=workspace.id, name=body.name, actor=actor, now=runtime.now()
    )
    await session.commit()
    return created(new)


@router.post(
    "/{key_id}/revoke",
    response_model=ApiKeyPublic,
    responses={
        409: {"description": "The key is already revoked, or is the workspace's last active key."}
    },
)
async def revoke_key(
    key_id: uuid.UUID,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ApiKeyPublic:
    """Revoke a key at once (its next request gets 401). The workspace's last active key
    cannot be revoked (409): create another first, or rotate it."""
    try:
        key = await api_keys.revoke_key(
            session, workspace_id=workspace.id, key_id=str(key_id), actor=actor, now=runtime.now()
        )
    except api_keys.KeyRefused as exc:
        raise refused(exc) from exc
    await session.commit()
    return public(key)


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={409: {"description": "The key is already revoked."}},
)
async def rotate_key(
    key_id: uuid.UUID,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ApiKeyCreated:
    """A new secret under the same name; the old key is revoked in the same transaction."""
    try:
        new = await api_keys.rotate_key(
            session, workspace_id=workspace.id, key_id=str(key_id), actor=actor, now=runtime.now()
        )
    except api_keys.KeyRefused as exc:
        raise refused(exc) from exc
    await session.commit()
    return created(new, replaces=str(key_id))
