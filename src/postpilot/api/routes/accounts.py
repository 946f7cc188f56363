"""/api/accounts: connected social accounts. Credentials are write-only; new ones are checked
live with the platform before they are kept. Reconnect, check and disconnect (which revokes at
the platform where it can) go through the connect service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from postpilot.api.connecting import ServiceDep, connect_errors, result, started
from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.schemas import (
    AccountCheck,
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    ConnectResult,
    ReconnectStart,
    RetriedDeliveries,
)
from postpilot.connect.base import Method
from postpilot.core.states import AccountStatus
from postpilot.core.timezones import as_utc
from postpilot.publishers import urls
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.fields import AccountFields, Kind, Problem
from postpilot.publishers.registry import PUBLISHERS, supported_platforms
from postpilot.store import accounts
from postpilot.store import connect as connect_store
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


@router.post(
    "",
    status_code=201,
    response_model=AccountPublic,
    responses={
        422: {
            "description": "A field is missing or unknown, a URL is not usable, or the "
            "platform refused the credentials in its live check (`connect_refused`, naming "
            "the field): nothing was saved."
        }
    },
)
async def create_account(
    body: AccountCreate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    service: ServiceDep,
) -> AccountPublic:
    """An account from credentials the platform issued, checked live with its "who am I"
    first (`verify: false` skips that, for imports). `POST /api/connect/{platform}` connects
    through the platform's own flow instead, with nothing to paste."""
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
    platform_id = None
    checked = ": not checked live (verify=false)"
    if body.verify and body.platform not in service.connectors:
        checked = f": not checked live (no live check for {body.platform})"
    elif body.verify:
        with connect_errors():
            identity = await service.verify_credentials(
                platform=body.platform,
                handle=body.handle,
                credentials=body.credentials,
                options=body.options,
                base_url=body.base_url,
            )
        platform_id, checked = identity.platform_id or None, f": verified live as {identity.handle}"
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
        platform_id=platform_id,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    await session.flush()  # its id, for the activity entry
    accounts.log_change(
        session, account, event=accounts.ACCOUNT_CREATED, detail=checked, actor=actor, now=now
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
    service: ServiceDep,
) -> Response:
    """Disconnect: revoke the grant at the platform where it can be (best effort: a failed
    revoke is in the activity and the account goes all the same), then cancel what the account
    still owed (each with an activity entry); a delivery a worker is publishing right now
    finishes, and its outcome is recorded."""
    account = await accounts.get_account(session, workspace.id, account_id)
    if account is None:
        raise not_found("account", account_id)
    revoked = await service.revoke(account)
    await accounts.delete_account(
        session, account, now=runtime.now(), actor=actor, note=f": {revoked}"
    )
    await session.commit()
    return Response(status_code=204)


async def _live_account(session: SessionDep, workspace_id: str, account_id: str) -> Account:
    account = await accounts.get_account(session, workspace_id, account_id)
    if account is None:
        raise not_found("account", account_id)
    return account


@router.post(
    "/{account_id}/reconnect",
    status_code=201,
    response_model=ConnectResult,
    responses={
        422: {
            "description": "An input is missing, the platform's app is not configured, or "
            "the platform refused: the account is unchanged."
        }
    },
)
async def reconnect(
    account_id: str,
    body: ReconnectStart,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    service: ServiceDep,
) -> ConnectResult:
    """Connect the account again through its platform's flow (an account in
    `needs_reconnect` above all): same id, posts and history; new credentials, status active.
    When it is done, `retryable_delivery_ids` lists the deliveries that failed because the old
    token was refused."""
    account = await _live_account(session, workspace.id, account_id)
    with connect_errors():
        connector = service.connector(account.platform)
        method = service.method_of(connector, body.method)
        declared = connector.start_inputs if method is Method.OAUTH else connector.direct_inputs
        inputs = service.with_server_of(account, declared, body.inputs)
        if method is Method.OAUTH:
            return started(
                await service.start(
                    workspace_id=workspace.id,
                    platform=account.platform,
                    inputs=inputs,
                    actor=actor,
                    success_url=body.success_url,
                    account_id=account.id,
                )
            )
        finished = await service.connect_direct(
            workspace_id=workspace.id,
            platform=account.platform,
            inputs=inputs,
            actor=actor,
            account_id=account.id,
        )
    return await result(session, workspace.id, finished)


@router.post("/{account_id}/check", response_model=AccountCheck)
async def check(
    account_id: str,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    service: ServiceDep,
) -> AccountCheck:
    """Ask the platform now whether the account's credentials still work ("who am I"): the
    account becomes active, or `needs_reconnect` with the platform's reason."""
    account = await _live_account(session, workspace.id, account_id)
    with connect_errors():
        checked = await service.check(account, actor=actor)
    await session.refresh(account)
    return AccountCheck(ok=checked.ok, message=checked.message, account=public(account))


@router.post(
    "/{account_id}/retry-failed",
    response_model=RetriedDeliveries,
    responses={409: {"description": "The account still needs to be reconnected."}},
)
async def retry_failed(
    account_id: str,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RetriedDeliveries:
    """Publish again, now, the account's deliveries that failed because its token was refused
    (as `POST /api/deliveries/{id}/resolve` with `retry` does for one)."""
    account = await _live_account(session, workspace.id, account_id)
    if account.status != AccountStatus.ACTIVE.value:
        raise ApiError(
            409,
            "needs_reconnect",
            f"the account is {account.status}: reconnect it first "
            f"(POST /api/accounts/{account.id}/reconnect)",
        )
    ids = await connect_store.retry_failed(session, account.id, now=runtime.now(), actor=actor)
    await session.commit()
    runtime.wakeup.set()
    return RetriedDeliveries(retried=ids)
