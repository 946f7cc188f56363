"""/api/accounts: connected social accounts. Credentials are write-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.schemas import AccountCreate, AccountPublic, AccountUpdate
from postpilot.core.timezones import as_utc
from postpilot.publishers import urls
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.fields import AccountFields, Kind, Problem
from postpilot.publishers.registry import PUBLISHERS, supported_platforms
from postpilot.store import accounts
from postpilot.store.tables import Account

router = APIRouter(prefix="/api/accounts", tags=["accounts"])


def public(account: Account) -> AccountPublic:
    return AccountPublic.model_validate(accounts.public_fields(account))


def _refuse(platform: str, problems: list[Problem]) -> None:
    """A 422 naming every field the account cannot be saved with."""
    if problems:
        details = [{"field": p.field, "message": p.message} for p in problems]
        message = "; ".join(f"{p.field} {p.message}" for p in problems)
        raise ApiError(422, "invalid_request", f"{platform} account: {message}", details)


def _check_urls(
    addresses: AddressPolicy,
    declared: AccountFields,
    base_url: str | None,
    credentials: dict[str, object],
) -> None:
    """Server URLs must not name a private address (unless the operator allowed it)."""
    for field, value in (("base_url", base_url), *declared.server_urls(credentials)):
        if value is None or value == "":
            continue
        try:
            urls.check_account_url(str(value), addresses)
        except urls.UnusableUrl as exc:
            details = [{"field": field, "message": str(exc)}]
            raise ApiError(422, "invalid_request", f"{field}: {exc}", details) from None


@router.post("", status_code=201, response_model=AccountPublic)
async def create_account(
    body: AccountCreate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AccountPublic:
    if body.platform not in PUBLISHERS:
        raise ApiError(
            422,
            "unsupported_platform",
            f"platform {body.platform!r} is not supported; use one of "
            f"{', '.join(supported_platforms())}",
        )
    declared = PUBLISHERS[body.platform].account_fields
    _refuse(
        body.platform,
        declared.check(Kind.CREDENTIAL, body.credentials)
        + declared.check(Kind.OPTION, body.options)
        + declared.check_base_url(body.base_url),
    )
    _check_urls(runtime.publish.addresses, declared, body.base_url, body.credentials)
    now = runtime.now()
    account = Account(
        workspace_id=workspace.id,
        platform=body.platform,
        handle=body.handle,
        base_url=body.base_url,
        options=body.options,
        credentials=runtime.cipher.encrypt(body.credentials),
        credentials_version=1,
        token_expires_at=as_utc(body.token_expires_at) if body.token_expires_at else None,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    await session.flush()  # its id, for the activity entry
    accounts.log_change(
        session, account, event=accounts.ACCOUNT_CREATED, detail="", actor=actor, now=now
    )
    await session.commit()
    return public(account)


@router.get("", response_model=list[AccountPublic])
async def list_accounts(
    workspace: WorkspaceDep,
    session: SessionDep,
    platform: Annotated[str | None, Query(max_length=50)] = None,
) -> list[AccountPublic]:
    return [
        public(a) for a in await accounts.list_accounts(session, workspace.id, platform=platform)
    ]


@router.get("/{account_id}", response_model=AccountPublic)
async def get_account(
    account_id: str, workspace: WorkspaceDep, session: SessionDep
) -> AccountPublic:
    account = await accounts.get_account(session, workspace.id, account_id)
    if account is None:
        raise not_found("account", account_id)
    return public(account)


@router.patch("/{account_id}", response_model=AccountPublic)
async def update_account(
    account_id: str,
    body: AccountUpdate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AccountPublic:
    account = await accounts.get_account(session, workspace.id, account_id)
    if account is None:
        raise not_found("account", account_id)
    now = runtime.now()
    fields = body.model_dump(exclude_unset=True)
    changed = ", ".join(sorted(fields)) or "nothing"  # names only: never a value or a secret
    declared = PUBLISHERS[account.platform].account_fields
    problems: list[Problem] = []
    if "credentials" in fields:  # replaces the stored credentials whole; null is none at all
        problems += declared.check(Kind.CREDENTIAL, fields["credentials"] or {})
    if fields.get("options") is not None:
        problems += declared.check(Kind.OPTION, fields["options"])
    if "base_url" in fields:
        problems += declared.check_base_url(fields["base_url"])
    _refuse(account.platform, problems)
    _check_urls(
        runtime.publish.addresses, declared, fields.get("base_url"), fields.get("credentials") or {}
    )
    if "credentials" in fields:
        credentials = fields.pop("credentials") or {}
        expires = fields.pop("token_expires_at", None)
        accounts.set_credentials(
            account, runtime.cipher.encrypt(credentials), as_utc(expires) if expires else None, now
        )
    for name in ("handle", "base_url", "options", "token_expires_at"):
        if name in fields and (
            fields[name] is not None or name in ("base_url", "token_expires_at")
        ):
            setattr(account, name, fields[name])
    account.updated_at = now
    accounts.log_change(
        session,
        account,
        event=accounts.ACCOUNT_UPDATED,
        detail=f": {changed}",
        actor=actor,
        now=now,
    )
    await session.commit()
    return public(account)


@router.delete("/{account_id}", status_code=204)
async def delete_account(
    account_id: str,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """Cancel what the account still owed (each with an activity entry); a delivery a worker
    is publishing right now finishes, and its outcome is recorded."""
    account = await accounts.get_account(session, workspace.id, account_id)
    if account is None:
        raise not_found("account", account_id)
    await accounts.delete_account(session, account, now=runtime.now(), actor=actor)
    await session.commit()
    return Response(status_code=204)
