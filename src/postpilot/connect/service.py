"""The connect service: runs each platform's connector (connect/platforms) and keeps what outlives
one request in the database: the flow (state hash, encrypted PKCE verifier, targets waiting for
a choice) and per-instance app registrations. Nothing becomes an account before the platform's
"who am I" accepted its credentials.

    start ──► the platform's consent page ──► callback(state, code) ──► exchange ──► targets
                                                                                     │ one │ several
    direct(inputs) ──► sign_in ──► targets ──────────────────────────────────────────┤     ▼
                                                                 verify ◄── choose(ids) ◄── choosing
                                                                   ▼
                                      account created, or the same account updated (reconnect,
                                      or the same platform id connected again in the workspace)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.connect import apps, flows, registry
from postpilot.connect.base import (
    App,
    ConnectContext,
    Connector,
    ConnectRefused,
    DirectConnector,
    Identity,
    Input,
    Method,
    OAuthConnector,
    RegistersApps,
    Revokes,
    Target,
)
from postpilot.connect.outcomes import (
    Checked,
    Choice,
    Finished,
    FlowNotFound,
    InvalidInput,
    InvalidState,
    NotChoosing,
    PlatformUnreachable,
    Started,
    UnsupportedPlatform,
)
from postpilot.core.states import AccountStatus
from postpilot.core.timezones import as_utc
from postpilot.errors import PostpilotError
from postpilot.publishers import urls
from postpilot.publishers.registry import PUBLISHERS
from postpilot.publishers.transport import NotPublicAddress
from postpilot.scheduler.runtime import Runtime
from postpilot.store import accounts
from postpilot.store import connect as store
from postpilot.store.tables import Account, ConnectFlow

log = logging.getLogger(__name__)
T = TypeVar("T")

ACCOUNT_RECONNECTED = "account_reconnected"
ACCOUNT_CHECKED = "account_checked"
# How long an ended flow is kept, for `GET /api/connect/flows/{id}` after the fact.
FORGET_AFTER = timedelta(days=1)
# Inputs that name a server (checked like an account's base URL before anything is sent).
# Credentials that carry a platform grant: two accounts holding the same one share it.
GRANT_FIELDS = frozenset({"access_token", "refresh_token", "refresh_jwt", "bot_token"})
SERVER_INPUTS = frozenset({"instance", "homeserver", "service", "server", "pds_url", "base_url"})


class ConnectService:
    def __init__(
        self, runtime: Runtime, *, connectors: Mapping[str, Connector] | None = None
    ) -> None:
        self.runtime = runtime
        self.connectors = registry.CONNECTORS if connectors is None else connectors

    # --- what there is -----------------------------------------------------------------

    def connector(self, platform: str) -> Connector:
        found = self.connectors.get(platform)
        if found is None:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise UnsupportedPlatform(f"{platform!r} cannot be connected; connect one of {known}")
        return found

    def method_of(self, connector: Connector, wanted: str | None = None) -> Method:
        """`wanted` if the platform offers it, else its consent page where it has one."""
        if wanted is not None:
            if wanted not in [m.value for m in connector.methods]:
                offered = ", ".join(m.value for m in connector.methods)
                raise InvalidInput(f"{connector.platform} connects with: {offered}", "method")
            return Method(wanted)
        oauth = Method.OAUTH in connector.methods and isinstance(connector, OAuthConnector)
        return Method.OAUTH if oauth else Method.DIRECT

    @staticmethod
    def with_server_of(
        account: Account, declared: tuple[Input, ...], given: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A reconnect's inputs: the account's own server (instance, homeserver, service)
        unless the person names another."""
        inputs = dict(given)
        for wanted in declared:
            if wanted.name in SERVER_INPUTS and wanted.name not in inputs and account.base_url:
                inputs[wanted.name] = account.base_url
        return inputs

    def configured(self, connector: Connector) -> bool:
        if not connector.needs_app:
            return True
        return apps.configured_app(self.runtime.settings, connector.platform) is not None

    def context(
        self, platform: str, *, app: App | None = None, base_url: str | None = None
    ) -> ConnectContext:
        return ConnectContext(
            http=self.runtime.http,
            now=self.runtime.now,
            redirect_uri=flows.callback_url(self.runtime.settings.PUBLIC_BASE_URL),
            app=app,
            base_url=base_url or self.runtime.publish.base_urls.get(platform),
        )

    # --- OAuth ---------------------------------------------------------------------------

    async def start(
        self,
        *,
        workspace_id: str,
        platform: str,
        inputs: Mapping[str, Any],
        actor: str,
        success_url: str | None = None,
        account_id: str | None = None,
    ) -> Started:
        """The platform's authorize URL for a new flow bound to the workspace (and to the
        account, for a reconnect)."""
        connector = self.connector(platform)
        if Method.OAUTH not in connector.methods or not isinstance(connector, OAuthConnector):
            raise InvalidInput(f"{platform} connects with its direct inputs, not a consent page")
        given = self._inputs(connector, connector.start_inputs, inputs)
        if account_id is not None:
            await self._account_to_reconnect(workspace_id, platform, account_id)
        app = await self._app(connector, given)
        ctx = self.context(platform, app=app)
        state, verifier = flows.new_state(), flows.new_verifier()
        authorize_url = connector.authorize_url(
            ctx,
            state=state,
            code_challenge=flows.challenge(verifier) if connector.pkce else None,
            inputs=given,
        )
        now = self.runtime.now()
        secret = {i.name for i in connector.start_inputs if i.secret}
        flow = ConnectFlow(
            state_hash=store.state_hash(state),
            workspace_id=workspace_id,
            platform=platform,
            method=Method.OAUTH.value,
            inputs={k: v for k, v in given.items() if k not in secret},
            code_verifier=self.runtime.cipher.encrypt({"v": verifier}) if connector.pkce else None,
            redirect_uri=ctx.redirect_uri,
            account_id=account_id,
            success_url=success_url,
            actor=actor,
            created_at=now,
            expires_at=flows.expires_at(now),
            status=store.PENDING,
            account_ids=[],
        )
        async with self.runtime.db.transaction() as session:
            await store.forget_flows(session, ended_before=now - FORGET_AFTER)
            session.add(flow)
        return Started(flow.id, authorize_url, flow.expires_at)

    async def callback(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> Finished:
        """The platform sent the person back: spend the flow, then the code."""
        if not state:
            raise InvalidState("the callback has no state: start connecting again")
        async with self.runtime.db.transaction() as session:
            flow, why = await store.take_flow(session, state, now=self.runtime.now())
        if flow is None:
            raise InvalidState(
                {
                    "used": "this connect link was already used: start connecting again",
                    "expired": "this connect link has expired: start connecting again",
                }.get(why, "this connect link is not one we issued: start connecting again")
            )
        connector = self.connector(flow.platform)
        name = apps.display_name(flow.platform)
        if error in (None, "access_denied") and not code:
            message = f"{name} access was denied: nothing was connected"
            return await self._fail(flow, "access_denied", message)
        if error or not code:  # the platform's own words, e.g. invalid_scope
            message = (
                f"{name} refused the authorization ({error}): "
                f"{error_description or 'no reason given'}"
            )
            return await self._fail(flow, "authorization_refused", message)
        assert isinstance(connector, OAuthConnector)
        inputs = {k: str(v) for k, v in flow.inputs.items()}
        try:
            app = await self._app(connector, inputs)
            ctx = self.context(flow.platform, app=app)
            ctx.redirect_uri = flow.redirect_uri  # exactly the one the authorize call sent
            verifier = (
                str(self.runtime.cipher.decrypt(flow.code_verifier)["v"])
                if flow.code_verifier
                else None
            )
            grant = await self._call(
                flow.platform,
                connector.exchange(ctx, code=code, code_verifier=verifier, inputs=inputs),
            )
            targets = await self._call(flow.platform, connector.targets(ctx, grant, inputs))
            return await self._land(flow, connector, ctx, targets)
        except ConnectRefused as exc:
            return await self._fail(flow, "connect_refused", exc.message, exc.field)
        except PlatformUnreachable as exc:
            return await self._fail(flow, exc.code, exc.message)
        except PostpilotError as exc:  # AppNotConfigured since the flow started
            return await self._fail(flow, "platform_not_configured", str(exc))

    # --- direct --------------------------------------------------------------------------

    async def connect_direct(
        self,
        *,
        workspace_id: str,
        platform: str,
        inputs: Mapping[str, Any],
        actor: str,
        account_id: str | None = None,
        extra_options: Mapping[str, Any] | None = None,
    ) -> Finished:
        """Sign in with what the person gave (an app password, a bot token, a webhook URL)."""
        connector = self.connector(platform)
        if Method.DIRECT not in connector.methods or not isinstance(connector, DirectConnector):
            raise InvalidInput(f"{platform} connects through its consent page: use method oauth")
        given = self._inputs(connector, connector.direct_inputs, inputs)
        if account_id is not None:
            await self._account_to_reconnect(workspace_id, platform, account_id)
        ctx = self.context(platform, app=apps.configured_app(self.runtime.settings, platform))
        targets = await self._call(platform, connector.sign_in(ctx, given))
        now = self.runtime.now()
        flow = ConnectFlow(
            state_hash=None,
            workspace_id=workspace_id,
            platform=platform,
            method=Method.DIRECT.value,
            inputs={},
            redirect_uri="",
            account_id=account_id,
            actor=actor,
            created_at=now,
            expires_at=flows.expires_at(now),
            used_at=now,
            status=store.PENDING,
            account_ids=[],
        )
        async with self.runtime.db.transaction() as session:
            session.add(flow)
        try:
            return await self._land(flow, connector, ctx, targets, extra_options=extra_options)
        except ConnectRefused as exc:
            await self._fail(flow, "connect_refused", exc.message, exc.field)
            raise

    # --- the choice step -----------------------------------------------------------------

    async def choose(
        self, *, workspace_id: str, flow_id: str, platform_ids: list[str], actor: str
    ) -> Finished:
        """Connect the picked targets of a flow waiting in `choosing` (once)."""
        now = self.runtime.now()
        async with self.runtime.db.transaction() as session:
            flow = await store.get_flow(session, workspace_id, flow_id)
            if flow is None:
                raise FlowNotFound(f"connect flow {flow_id} does not exist in this workspace")
            if flow.status != store.CHOOSING or as_utc(flow.expires_at) <= now:
                raise NotChoosing(
                    f"connect flow {flow_id} is {flow.status}"
                    + (" and expired" if as_utc(flow.expires_at) <= now else "")
                    + ": nothing to choose; start connecting again"
                )
            targets = flows.targets_from_json(
                self.runtime.cipher.decrypt(flow.pending_targets or "")
            )
            by_id = {t.platform_id: t for t in targets}
            unknown = [p for p in platform_ids if p not in by_id]
            if unknown or not platform_ids:
                raise InvalidInput(
                    f"platform_ids: pick among {', '.join(by_id)}"
                    + (f" ({', '.join(unknown)} is not one)" if unknown else ""),
                    "platform_ids",
                )
            if flow.account_id is not None and len(set(platform_ids)) != 1:
                raise InvalidInput("platform_ids: a reconnect picks exactly one", "platform_ids")
            if not await store.claim_choice(session, flow, now=now):
                raise NotChoosing(f"connect flow {flow_id} was chosen already")
        picked = [by_id[p] for p in dict.fromkeys(platform_ids)]
        connector = self.connector(flow.platform)
        ctx = self.context(
            flow.platform, app=apps.configured_app(self.runtime.settings, flow.platform)
        )
        try:
            return await self._save_all(flow, connector, ctx, picked, actor=actor)
        except ConnectRefused as exc:
            return await self._fail(flow, "connect_refused", exc.message, exc.field)

    async def flow(self, workspace_id: str, flow_id: str) -> Finished:
        async with self.runtime.db.session() as session:
            flow = await store.get_flow(session, workspace_id, flow_id)
            if flow is None:
                raise FlowNotFound(f"connect flow {flow_id} does not exist in this workspace")
            retry = (
                await store.retryable_deliveries(session, flow.account_id)
                if flow.account_id and flow.status == store.DONE
                else []
            )
        return self._finished(flow, retryable=retry)

    # --- raw credentials, checks and disconnects -----------------------------------------

    async def verify_credentials(
        self,
        *,
        platform: str,
        handle: str,
        credentials: Mapping[str, Any],
        options: Mapping[str, Any],
        base_url: str | None,
    ) -> Identity:
        """The platform's "who am I" for credentials a person pasted; `ConnectRefused` naming
        the field it refused."""
        connector = self.connector(platform)
        target = Target(
            platform_id="",
            name=handle,
            handle=handle,
            credentials=dict(credentials),
            options=dict(options),
            base_url=base_url,
        )
        ctx = self.context(
            platform, app=apps.configured_app(self.runtime.settings, platform), base_url=base_url
        )
        return await self._call(platform, connector.verify(ctx, target))

    async def check(self, account: Account, *, actor: str) -> Checked:
        """Run the live check now; the account becomes active, or needs a reconnect with the
        platform's reason. An expired token that the scheduler renews is not a refusal."""
        credentials = self.runtime.cipher.decrypt(account.credentials)
        now = self.runtime.now()
        try:
            identity = await self.verify_credentials(
                platform=account.platform,
                handle=account.handle,
                credentials=credentials,
                options=account.options,
                base_url=account.base_url,
            )
        except ConnectRefused as exc:
            renewable = (
                PUBLISHERS[account.platform].can_refresh
                and account.token_expires_at is not None
                and as_utc(account.token_expires_at) <= now
                and bool(credentials.get("refresh_token") or credentials.get("refresh_jwt"))
            )
            message = exc.message + (
                " (the access token has expired; the next publish renews it)" if renewable else ""
            )
            if not renewable:
                await self._set_status(account, AccountStatus.NEEDS_RECONNECT, message, actor)
            return Checked(account, False, message)
        await self._set_status(account, AccountStatus.ACTIVE, None, actor)
        return Checked(account, True, f"{account.platform} says this is {identity.handle}")

    async def revoke(self, account: Account) -> str:
        """Revoke the account's grant at the platform where it can be: best effort, the words
        for the activity entry (never a token)."""
        connector = self.connectors.get(account.platform)
        if connector is None or not isinstance(connector, Revokes):
            return "not revoked: the platform offers no revocation"
        try:
            credentials = self.runtime.cipher.decrypt(account.credentials)
            if await self._grant_shared(account, credentials):
                # One login can become several accounts (LinkedIn's member and organizations,
                # Slack's channels): revoking would cut the others off.
                return "not revoked: another account still uses the same grant"
            app = apps.configured_app(self.runtime.settings, account.platform)
            if isinstance(connector, RegistersApps) and account.base_url:
                server = {i.name: account.base_url for i in connector.start_inputs}
                app = await self._kept_app(connector, server) or app
            ctx = self.context(account.platform, app=app, base_url=account.base_url)
            await connector.revoke(ctx, credentials)
        except Exception as exc:  # best effort: a failed revoke never keeps the account
            reason = exc.message if isinstance(exc, ConnectRefused) else type(exc).__name__
            log.warning(
                "revoking account %s on %s failed: %s", account.id, account.platform, reason
            )
            return f"revoking at {account.platform} failed ({reason})"
        return f"revoked at {account.platform}"

    # --- inside --------------------------------------------------------------------------

    async def _grant_shared(self, account: Account, credentials: Mapping[str, Any]) -> bool:
        """Whether another connected account of the platform holds one of this account's
        tokens. Disconnects are rare: decrypting the platform's accounts is fine."""
        tokens = {str(v) for k, v in credentials.items() if k in GRANT_FIELDS and v}
        if not tokens:
            return False
        async with self.runtime.db.session() as session:
            others = await accounts.connected_on(session, account.platform, besides=account.id)
        for other in others:
            theirs = self.runtime.cipher.decrypt(other.credentials)
            if tokens & {str(v) for k, v in theirs.items() if k in GRANT_FIELDS and v}:
                return True
        return False

    def _inputs(
        self, connector: Connector, declared: tuple[Input, ...], given: Mapping[str, Any]
    ) -> dict[str, str]:
        """The inputs as strings, each declared, the required ones there, server URLs allowed."""
        names = {i.name for i in declared}
        problems = [
            f"inputs.{name} is not an input of {connector.platform} "
            f"({', '.join(sorted(names)) or 'it takes none'})"
            for name in given
            if name not in names
        ]
        problems += [
            f"inputs.{name} must be a string" for name, v in given.items() if not isinstance(v, str)
        ]
        problems += [
            f"inputs.{i.name} is required: {i.description}"
            for i in declared
            if i.required and not str(given.get(i.name) or "").strip()
        ]
        if problems:
            first = problems[0].split(" ", 1)[0]
            raise InvalidInput("; ".join(problems), first)
        values = {k: str(v).strip() for k, v in given.items() if str(v).strip()}
        for name, value in values.items():
            if name in SERVER_INPUTS or "://" in value:
                url = value if "://" in value else f"https://{value}"
                try:
                    urls.check_account_url(url, self.runtime.publish.addresses)
                except urls.UnusableUrl as exc:
                    raise InvalidInput(f"inputs.{name}: {exc}", f"inputs.{name}") from None
        return values

    async def _app(self, connector: Connector, inputs: Mapping[str, str]) -> App | None:
        """The app to connect with: the instance's registration (made once and kept), the
        settings' app, or `AppNotConfigured`."""
        if isinstance(connector, RegistersApps):
            kept = await self._kept_app(connector, inputs)
            if kept is not None:
                return kept
            app = await self._call(
                connector.platform,
                connector.register_app(self.context(connector.platform), inputs),
            )
            async with self.runtime.db.transaction() as session:
                encrypted = self.runtime.cipher.encrypt(
                    {"client_id": app.client_id, "client_secret": app.client_secret}
                )
                saved = await store.save_app(
                    session,
                    connector.platform,
                    self._server(connector, inputs),
                    encrypted,
                    now=self.runtime.now(),
                )
                data = self.runtime.cipher.decrypt(saved.credentials)
            return App(data["client_id"], data.get("client_secret"))
        if connector.needs_app:
            return apps.required_app(self.runtime.settings, connector.platform)
        return None

    def _server(self, connector: RegistersApps, inputs: Mapping[str, str]) -> str:
        # An app is registered with our callback URL: a new PUBLIC_BASE_URL needs a new one.
        redirect_uri = flows.callback_url(self.runtime.settings.PUBLIC_BASE_URL)
        return f"{connector.app_key(inputs)} {redirect_uri}"[:500]

    async def _kept_app(self, connector: RegistersApps, inputs: Mapping[str, str]) -> App | None:
        async with self.runtime.db.session() as session:
            kept = await store.app_for(
                session, getattr(connector, "platform", ""), self._server(connector, inputs)
            )
        if kept is None:
            return None
        data = self.runtime.cipher.decrypt(kept.credentials)
        return App(data["client_id"], data.get("client_secret"))

    async def _call(self, platform: str, call: Awaitable[T]) -> T:
        """Await a connector call; the network failing becomes one line without a URL (a URL
        may carry a token, as Telegram's do)."""
        try:
            result: T = await call
        except NotPublicAddress as exc:
            raise PlatformUnreachable(f"could not reach {platform}: {exc}") from None
        except httpx.HTTPError as exc:
            raise PlatformUnreachable(
                f"could not reach {platform} ({type(exc).__name__}); try again"
            ) from None
        return result

    async def _account_to_reconnect(
        self, workspace_id: str, platform: str, account_id: str
    ) -> Account:
        async with self.runtime.db.session() as session:
            account = await accounts.get_account(session, workspace_id, account_id)
        if account is None:
            raise FlowNotFound(f"account {account_id} does not exist in this workspace")
        if account.platform != platform:
            raise InvalidInput(f"account {account_id} is a {account.platform} account")
        return account

    async def _land(
        self,
        flow: ConnectFlow,
        connector: Connector,
        ctx: ConnectContext,
        targets: list[Target],
        *,
        extra_options: Mapping[str, Any] | None = None,
    ) -> Finished:
        """One target (or a reconnect's own): verify and save. Several: wait for a choice."""
        if not targets:
            raise ConnectRefused(
                f"{connector.platform} gave access to nothing this login can post to"
            )
        if flow.account_id is not None:
            async with self.runtime.db.session() as session:
                account = await session.get(Account, flow.account_id)
            own = [t for t in targets if account and t.platform_id == account.platform_id]
            targets = own or targets
        if len(targets) == 1:
            return await self._save_all(
                flow, connector, ctx, targets, actor=flow.actor, extra_options=extra_options
            )
        now = self.runtime.now()
        async with self.runtime.db.transaction() as session:
            row = await session.get(ConnectFlow, flow.id)
            assert row is not None
            row.status = store.CHOOSING
            row.expires_at = flows.expires_at(now)
            row.pending_targets = self.runtime.cipher.encrypt(flows.targets_to_json(targets))
            return self._finished(row, targets=targets)

    async def _save_all(
        self,
        flow: ConnectFlow,
        connector: Connector,
        ctx: ConnectContext,
        targets: list[Target],
        *,
        actor: str,
        extra_options: Mapping[str, Any] | None = None,
    ) -> Finished:
        """Verify every target live, then save them all in one transaction."""
        verified = [
            (target, await self._call(connector.platform, connector.verify(ctx, target)))
            for target in targets
        ]
        now = self.runtime.now()
        how = "its consent page" if flow.method == Method.OAUTH.value else "its sign-in"
        async with self.runtime.db.transaction() as session:
            ids = []
            for target, identity in verified:
                account = await self._save(
                    session,
                    flow,
                    target,
                    base_url=target.base_url or ctx.base_url,
                    extra_options=extra_options or {},
                    detail=f": connected through {how}, verified live as {identity.handle}",
                    actor=actor,
                    now=now,
                )
                ids.append(account.id)
            row = await session.get(ConnectFlow, flow.id)
            assert row is not None
            row.status, row.account_ids, row.pending_targets = store.DONE, ids, None
            retry = (
                await store.retryable_deliveries(session, flow.account_id)
                if flow.account_id
                else []
            )
            return self._finished(row, retryable=retry)

    async def _save(
        self,
        session: AsyncSession,
        flow: ConnectFlow,
        target: Target,
        *,
        base_url: str | None,
        extra_options: Mapping[str, Any],
        detail: str,
        actor: str,
        now: datetime,
    ) -> Account:
        """The reconnected account, the workspace's account of that platform id, or a new one."""
        account = None
        if flow.account_id is not None:
            account = await accounts.get_account(session, flow.workspace_id, flow.account_id)
            if account is None:
                raise ConnectRefused("the account to reconnect was deleted meanwhile")
            if account.platform_id and account.platform_id != target.platform_id:
                raise ConnectRefused(
                    f"you signed in as {target.handle}, but this account is {account.handle}: "
                    f"sign in as {account.handle} to reconnect it"
                )
        else:
            account = await store.account_by_platform_id(
                session, flow.workspace_id, flow.platform, target.platform_id
            )
        encrypted = self.runtime.cipher.encrypt(target.credentials)
        if account is None:
            account = Account(
                workspace_id=flow.workspace_id,
                platform=flow.platform,
                handle=target.handle,
                base_url=base_url,
                options={**target.options, **extra_options},
                credentials=encrypted,
                credentials_version=1,
                token_expires_at=target.expires_at,
                platform_id=target.platform_id,
                created_at=now,
                updated_at=now,
            )
            session.add(account)
            await session.flush()
            event = accounts.ACCOUNT_CREATED
        else:
            accounts.set_credentials(account, encrypted, target.expires_at, now)
            account.handle = target.handle
            account.base_url = base_url
            account.options = {**account.options, **target.options, **extra_options}
            account.platform_id = target.platform_id
            event = ACCOUNT_RECONNECTED
        accounts.log_change(session, account, event=event, detail=detail, actor=actor, now=now)
        return account

    async def _fail(
        self, flow: ConnectFlow, code: str, message: str, field: str | None = None
    ) -> Finished:
        async with self.runtime.db.transaction() as session:
            row = await session.get(ConnectFlow, flow.id)
            assert row is not None
            row.status, row.error, row.pending_targets = store.FAILED, message, None
        return Finished(
            flow_id=flow.id,
            status=store.FAILED,
            workspace_id=flow.workspace_id,
            error=code,
            message=message,
            field=field,
            success_url=flow.success_url,
        )

    async def _set_status(
        self, account: Account, status: AccountStatus, reason: str | None, actor: str
    ) -> None:
        if account.status == status.value and account.status_reason == reason:
            return
        now = self.runtime.now()
        async with self.runtime.db.transaction() as session:
            row = await session.get(Account, account.id)
            assert row is not None
            row.status, row.status_reason, row.updated_at = status.value, reason, now
            accounts.log_change(
                session,
                row,
                event=ACCOUNT_CHECKED,
                detail=f": live check says {status.value}" + (f" ({reason})" if reason else ""),
                actor=actor,
                now=now,
            )
        account.status, account.status_reason, account.updated_at = status.value, reason, now

    def _finished(
        self,
        flow: ConnectFlow,
        *,
        targets: list[Target] | None = None,
        retryable: list[str] | None = None,
    ) -> Finished:
        if targets is None and flow.status == store.CHOOSING and flow.pending_targets:
            targets = flows.targets_from_json(self.runtime.cipher.decrypt(flow.pending_targets))
        return Finished(
            flow_id=flow.id,
            status=flow.status,
            workspace_id=flow.workspace_id,
            account_ids=list(flow.account_ids or []),
            choices=[Choice(t.platform_id, t.name, t.handle) for t in targets or []],
            error="connect_refused" if flow.status == store.FAILED else None,
            message=flow.error,
            success_url=flow.success_url,
            retryable_delivery_ids=retryable or [],
        )
