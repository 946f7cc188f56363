"""The accounts page: connect a platform (its consent page, or the inputs it issued to the
person), the choice step when a sign-in reaches several pages, channels or rooms, and each
account's state, token expiry, check, reconnect (then retry what failed) and disconnect.

Admins change; every member sees. The pages call the same connect service as /api/connect and
/api/accounts, with the signed-in user as the actor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.connect.base import AppNotConfigured, ConnectRefused, Input, Method
from postpilot.connect.outcomes import ConnectError, Finished
from postpilot.connect.service import SERVER_INPUTS, ConnectService
from postpilot.core.roles import Permission, allows
from postpilot.core.states import AccountStatus
from postpilot.errors import PostpilotError
from postpilot.store import accounts
from postpilot.store import connect as connect_store
from postpilot.store.tables import Account
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/accounts", include_in_schema=False)

INPUT_PREFIX = "in_"  # form fields named after a platform's inputs: in_instance, in_password
MAX_INPUT = 2000


class Refusal(PostpilotError):
    """What the connect service refused, in words for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except ConnectError as exc:
        field = f"{exc.field}: " if exc.field else ""
        raise Refusal(exc.status, f"{field}{exc.message}") from None
    except ConnectRefused as exc:
        field = f"{exc.field}: " if exc.field else ""
        raise Refusal(422, f"The platform refused: {field}{exc.message}") from None
    except AppNotConfigured as exc:
        raise Refusal(422, str(exc)) from None


@dataclass(frozen=True, slots=True)
class PlatformChoice:
    """A connect button: the platform, how it connects, what it asks for."""

    platform: str
    oauth: bool
    inputs: tuple[Input, ...]  # the consent page's start inputs, or the direct inputs
    configured: bool


def _platforms(service: ConnectService) -> list[PlatformChoice]:
    found = []
    for name, connector in sorted(service.connectors.items()):
        oauth = service.method_of(connector) is Method.OAUTH
        inputs = connector.start_inputs if oauth else connector.direct_inputs
        found.append(PlatformChoice(name, oauth, inputs, service.configured(connector)))
    return found


def _inputs(form: Mapping[str, Any], declared: tuple[Input, ...]) -> dict[str, str]:
    """The declared inputs the form filled; the service says which required ones are missing."""
    given: dict[str, str] = {}
    for wanted in declared:
        value = form.get(INPUT_PREFIX + wanted.name)
        if isinstance(value, str) and value.strip():
            if len(value) > MAX_INPUT:
                raise Refusal(422, f"{wanted.name}: at most {MAX_INPUT} characters")
            given[wanted.name] = value.strip()
    return given


def _success_url(request: Request) -> str:
    return f"{auth.runtime_of(request).settings.PUBLIC_BASE_URL.rstrip('/')}/accounts"


def _go(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _away(request: Request, signed: SignedIn, platform: str, url: str) -> Response:
    """To a platform's consent page. The pages' CSP allows forms to post only to this site,
    which a redirect to another counts against: htmx is told to navigate there instead, and
    a browser without scripts gets a link to follow."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return page(request, "accounts_away.html", signed, title="Continue", platform=platform, url=url)


async def _retryable(session: AsyncSession, ids: list[str]) -> dict[str, int]:
    counts = {}
    for account_id in ids:
        if found := await connect_store.retryable_deliveries(session, account_id):
            counts[account_id] = len(found)
    return counts


async def _accounts_page(
    request: Request, signed: SignedIn, *, status: int = 200, **shown: Any
) -> Response:
    runtime = auth.runtime_of(request)
    service = ConnectService(runtime)
    async with runtime.db.session() as session:
        listed = await accounts.list_accounts(session, signed.workspace.id)
        just = shown.pop("just_connected", [])
        retryable = await _retryable(
            session, [a.id for a in listed if a.id in just and a.status == "active"]
        )
    return page(
        request,
        "accounts.html",
        signed,
        title="Accounts",
        status=status,
        accounts=listed,
        platforms=_platforms(service),
        can_manage=allows(signed.role, Permission.MANAGE_ACCOUNTS),
        input_prefix=INPUT_PREFIX,
        retryable=retryable,
        now=runtime.now(),
        **shown,
    )


@router.get("")
async def accounts_page(
    request: Request,
    signed: Member,
    account_id: Annotated[str | None, Query(max_length=2000)] = None,
    flow_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    message: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Also where a consent page's flow lands (the flow's success URL says how it ended)."""
    if status == "choosing" and flow_id:
        return _go(f"/accounts/flows/{flow_id}")
    if error:
        return await _accounts_page(
            request, signed, status=200, error=f"Not connected ({error}): {message or error}."
        )
    ids = account_id.split(",") if account_id else []
    return await _accounts_page(request, signed, just_connected=ids, connected=len(ids))


async def _finished(request: Request, signed: SignedIn, finished: Finished) -> Response:
    if finished.status == "choosing" and finished.flow_id:
        return _go(f"/accounts/flows/{finished.flow_id}")
    if finished.status == "failed":
        return await _accounts_page(
            request, signed, status=422, error=finished.message or finished.error or "failed"
        )
    return _go("/accounts?account_id=" + ",".join(finished.account_ids))


@router.post("/connect/{platform}")
async def connect(request: Request, signed: Member, platform: str) -> Response:
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    runtime = auth.runtime_of(request)
    service = ConnectService(runtime)
    form = await request.form()
    try:
        with _refusals():
            connector = service.connector(platform)
            if service.method_of(connector) is Method.OAUTH:
                started = await service.start(
                    workspace_id=signed.workspace.id,
                    platform=platform,
                    inputs=_inputs(form, connector.start_inputs),
                    actor=signed.actor,
                    success_url=_success_url(request),
                )
                return _away(request, signed, platform, started.authorize_url)
            finished = await service.connect_direct(
                workspace_id=signed.workspace.id,
                platform=platform,
                inputs=_inputs(form, connector.direct_inputs),
                actor=signed.actor,
            )
    except Refusal as exc:
        return await _accounts_page(request, signed, status=exc.status, error=exc.message)
    return await _finished(request, signed, finished)


@router.get("/flows/{flow_id}")
async def choice_page(request: Request, signed: Member, flow_id: str) -> Response:
    service = ConnectService(auth.runtime_of(request))
    try:
        with _refusals():
            finished = await service.flow(signed.workspace.id, flow_id)
    except Refusal as exc:
        raise auth.Refused(exc.status, "not_found", exc.message) from None
    if finished.status != "choosing":
        return await _finished(request, signed, finished)
    return page(
        request,
        "accounts_choose.html",
        signed,
        title="Choose what to connect",
        flow_id=flow_id,
        choices=finished.choices,
        can_manage=allows(signed.role, Permission.MANAGE_ACCOUNTS),
    )


@router.post("/flows/{flow_id}/choose")
async def choose(
    request: Request,
    signed: Member,
    flow_id: str,
    platform_ids: Annotated[list[str], Form(max_length=100)],
) -> Response:
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    service = ConnectService(auth.runtime_of(request))
    try:
        with _refusals():
            finished = await service.choose(
                workspace_id=signed.workspace.id,
                flow_id=flow_id,
                platform_ids=platform_ids,
                actor=signed.actor,
            )
    except Refusal as exc:
        return await _accounts_page(request, signed, status=exc.status, error=exc.message)
    return await _finished(request, signed, finished)


async def _account(request: Request, signed: SignedIn, account_id: str) -> Account:
    async with auth.runtime_of(request).db.session() as session:
        found = await accounts.get_account(session, signed.workspace.id, account_id)
    if found is None:
        raise auth.Refused(404, "not_found", f"no account {account_id} in this workspace")
    return found


@router.post("/{account_id}/check")
async def check(request: Request, signed: Member, account_id: str) -> Response:
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    account = await _account(request, signed, account_id)
    service = ConnectService(auth.runtime_of(request))
    try:
        with _refusals():
            checked = await service.check(account, actor=signed.actor)
    except Refusal as exc:
        return await _accounts_page(request, signed, status=exc.status, error=exc.message)
    words = f"{account.handle} on {account.platform}: {checked.message}."
    if checked.ok:
        return await _accounts_page(request, signed, checked=words)
    return await _accounts_page(request, signed, error=words)


@router.get("/{account_id}/reconnect")
async def reconnect_page(request: Request, signed: Member, account_id: str) -> Response:
    """Platforms connected with typed inputs ask for them again (a new app password)."""
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    account = await _account(request, signed, account_id)
    service = ConnectService(auth.runtime_of(request))
    connector = service.connector(account.platform)
    oauth = service.method_of(connector) is Method.OAUTH
    declared = connector.start_inputs if oauth else connector.direct_inputs
    return page(
        request,
        "accounts_reconnect.html",
        signed,
        title="Reconnect",
        account=account,
        # The account's own server is kept unless the person names another.
        inputs=[i for i in declared if not (account.base_url and i.name in SERVER_INPUTS)],
        input_prefix=INPUT_PREFIX,
        oauth=oauth,
    )


@router.post("/{account_id}/reconnect")
async def reconnect(request: Request, signed: Member, account_id: str) -> Response:
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    account = await _account(request, signed, account_id)
    service = ConnectService(auth.runtime_of(request))
    form = await request.form()
    try:
        with _refusals():
            connector = service.connector(account.platform)
            method = service.method_of(connector)
            declared = connector.start_inputs if method is Method.OAUTH else connector.direct_inputs
            inputs = service.with_server_of(account, declared, _inputs(form, declared))
            if method is Method.OAUTH:
                started = await service.start(
                    workspace_id=signed.workspace.id,
                    platform=account.platform,
                    inputs=inputs,
                    actor=signed.actor,
                    success_url=_success_url(request),
                    account_id=account.id,
                )
                return _away(request, signed, account.platform, started.authorize_url)
            finished = await service.connect_direct(
                workspace_id=signed.workspace.id,
                platform=account.platform,
                inputs=inputs,
                actor=signed.actor,
                account_id=account.id,
            )
    except Refusal as exc:
        return await _accounts_page(request, signed, status=exc.status, error=exc.message)
    return await _finished(request, signed, finished)


@router.post("/{account_id}/retry-failed")
async def retry_failed(request: Request, signed: Member, account_id: str) -> Response:
    """As POST /api/accounts/{id}/retry-failed: publish again what failed on the old token."""
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        account = await accounts.get_account(session, signed.workspace.id, account_id)
        if account is None:
            raise auth.Refused(404, "not_found", f"no account {account_id} in this workspace")
        if account.status != AccountStatus.ACTIVE.value:
            return await _accounts_page(
                request, signed, status=409, error=f"{account.handle} needs reconnecting first."
            )
        ids = await connect_store.retry_failed(
            session, account.id, now=runtime.now(), actor=signed.actor
        )
    runtime.wakeup.set()
    return await _accounts_page(
        request,
        signed,
        checked=f"Retried {len(ids)} failed deliver{'y' if len(ids) == 1 else 'ies'} of "
        f"{account.handle}.",
    )


@router.get("/{account_id}/disconnect")
async def disconnect_page(request: Request, signed: Member, account_id: str) -> Response:
    """The confirmation step: disconnecting cancels what the account still owed."""
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    account = await _account(request, signed, account_id)
    return page(request, "accounts_disconnect.html", signed, title="Disconnect", account=account)


@router.post("/{account_id}/disconnect")
async def disconnect(request: Request, signed: Member, account_id: str) -> Response:
    auth.require(signed, Permission.MANAGE_ACCOUNTS)
    runtime = auth.runtime_of(request)
    service = ConnectService(runtime)
    async with runtime.db.transaction() as session:
        account = await accounts.get_account(session, signed.workspace.id, account_id)
        if account is None:
            raise auth.Refused(404, "not_found", f"no account {account_id} in this workspace")
        revoked = await service.revoke(account)
        await accounts.delete_account(
            session, account, now=runtime.now(), actor=signed.actor, note=f": {revoked}"
        )
    return await _accounts_page(
        request, signed, checked=f"{account.handle} on {account.platform} was disconnected."
    )
