"""Bluesky: the person gives their handle (or email, or DID) and an app password made under
Settings > App passwords; we sign in at their service (`createSession`, bsky.social unless they
name another), find the account's own PDS from its DID document (the session's `didDoc`, or the
PLC directory / did:web document) rather than assuming the service is the PDS, and ask that PDS
who the session belongs to (`getSession`) before the account exists.

The app password is kept (encrypted) with the session so the publisher can sign in again when
the refresh token has run out; disconnecting ends the session (`deleteSession`), and the person
removes the app password in their settings to end it for good."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Identity,
    Input,
    Method,
    Target,
)
from postpilot.connect.platforms._calls import call, json_object, server_url
from postpilot.publishers.bluesky import jwt_expiry

DEFAULT_SERVICE = "https://bsky.social"
PLC_DIRECTORY = "https://plc.directory"  # did:plc documents (the sandbox serves its own)
PASSWORD = "inputs.app_password"
HANDLE = "inputs.handle"


def _xrpc(base: str, nsid: str) -> str:
    return f"{base}/xrpc/{nsid}"


def _error(body: Mapping[str, Any], status: int) -> tuple[str, str]:
    return str(body.get("error") or f"HTTP {status}"), str(body.get("message") or "")[:300]


class BlueskyConnector:
    platform: ClassVar[str] = "bluesky"
    methods: ClassVar[tuple[Method, ...]] = (Method.DIRECT,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = (
        Input("handle", "Your handle (alice.bsky.social), email or DID."),
        Input(
            "app_password",
            "An app password from Settings > App passwords (xxxx-xxxx-xxxx-xxxx), not your "
            "account's password.",
            secret=True,
        ),
        Input("service", f"Where you sign in, if not {DEFAULT_SERVICE}.", required=False),
    )
    needs_app: ClassVar[bool] = False
    scopes: ClassVar[tuple[str, ...]] = ()

    async def sign_in(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> list[Target]:
        identifier = (inputs.get("handle") or "").strip().removeprefix("@")
        password = (inputs.get("app_password") or "").strip()
        if not identifier:
            raise ConnectRefused("Your Bluesky handle, email or DID is needed", HANDLE)
        if not password:
            raise ConnectRefused("An app password is needed", PASSWORD)
        # Not named: bsky.social, or what replaces Bluesky's hosts (the sandbox).
        named = inputs.get("service") or ctx.url(DEFAULT_SERVICE, "")
        service = server_url(named, field="inputs.service", what="The service")
        session = await self._create_session(ctx, service, identifier, password)
        did = str(session.get("did") or "")
        if not did.startswith("did:") or not session.get("accessJwt"):
            raise ConnectRefused(f"{service} answered the sign-in without a session", HANDLE)
        document = session.get("didDoc")
        if not isinstance(document, dict):
            document = await self._did_document(ctx, did)
        pds = _pds_of(document)
        if pds is None:
            raise ConnectRefused(
                f"The account's DID document names no PDS ({did}); it cannot be posted to", HANDLE
            )
        handle = str(session.get("handle") or "")
        # A handle counts only if the DID document claims it back.
        if f"at://{handle}" not in (document.get("alsoKnownAs") or []):
            handle = did
        access, refresh = str(session["accessJwt"]), str(session.get("refreshJwt") or "")
        target = Target(
            platform_id=did,
            name=handle,
            handle=handle,
            credentials={
                "did": did,
                "access_jwt": access,
                "refresh_jwt": refresh,
                "identifier": identifier,
                "password": password,
                "pds_url": pds,
            },
            base_url=pds,
            expires_at=jwt_expiry(access),
        )
        return [target]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        pds = str(target.credentials.get("pds_url") or target.base_url or DEFAULT_SERVICE)
        token = str(target.credentials.get("access_jwt") or "")
        response = await call(
            ctx,
            "GET",
            _xrpc(pds, "com.atproto.server.getSession"),
            who="The account's PDS",
            field="credentials.access_jwt",
            headers={"Authorization": f"Bearer {token}"},
        )
        body = json_object(response)
        if response.status_code != 200:
            name, message = _error(body, response.status_code)
            raise ConnectRefused(
                f"The account's PDS does not accept the session ({name}: {message}); reconnect",
                "credentials.access_jwt",
            )
        did = str(body.get("did") or "")
        if did != target.credentials.get("did"):
            raise ConnectRefused(
                "The account's PDS says the session belongs to another account", "credentials.did"
            )
        if body.get("active") is False:
            status = body.get("status") or "inactive"
            raise ConnectRefused(f"The Bluesky account is {status}", "credentials.did")
        return Identity(platform_id=did, handle=str(body.get("handle") or did))

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        """End the session at the PDS (the refresh token as Bearer, as atproto asks)."""
        pds = str(credentials.get("pds_url") or ctx.base_url or DEFAULT_SERVICE)
        refresh = str(credentials.get("refresh_jwt") or "")
        if not refresh:
            return  # no session to end
        response = await call(
            ctx,
            "POST",
            _xrpc(pds, "com.atproto.server.deleteSession"),
            who="The account's PDS",
            headers={"Authorization": f"Bearer {refresh}"},
        )
        name, message = _error(json_object(response), response.status_code)
        if response.status_code != 200 and name not in ("ExpiredToken", "InvalidToken"):
            raise ConnectRefused(f"The PDS did not end the session ({name}: {message})")

    async def _create_session(
        self, ctx: ConnectContext, service: str, identifier: str, password: str
    ) -> dict[str, Any]:
        response = await call(
            ctx,
            "POST",
            _xrpc(service, "com.atproto.server.createSession"),
            who=service,
            field="inputs.service",
            json={"identifier": identifier, "password": password},
        )
        body = json_object(response)
        if response.status_code == 200:
            return body
        name, message = _error(body, response.status_code)
        detail = f"({name}: {message})" if message else f"({name})"
        if name == "AuthenticationRequired":
            raise ConnectRefused(
                f"Bluesky refused the handle or app password {detail}; check the handle and "
                "make a new app password under Settings > App passwords",
                PASSWORD,
            )
        if name == "AuthFactorTokenRequired":
            raise ConnectRefused(
                "This is the account's own password (Bluesky asks for an email code); use an "
                "app password instead",
                PASSWORD,
            )
        if name == "AccountTakedown":
            raise ConnectRefused(f"Bluesky has taken this account down {detail}", HANDLE)
        if response.status_code == 429:
            raise ConnectRefused(
                f"Too many sign-ins to this account for now {detail}; try again later", HANDLE
            )
        raise ConnectRefused(f"{service} refused the sign-in {detail}", "inputs.service")

    async def _did_document(self, ctx: ConnectContext, did: str) -> dict[str, Any]:
        """did:plc from the PLC directory, did:web from the domain's did.json."""
        if did.startswith("did:plc:"):
            url = ctx.url(PLC_DIRECTORY, f"/{quote(did, safe=':')}")
        elif did.startswith("did:web:"):
            host = did.removeprefix("did:web:").replace("%3A", ":")
            url = f"https://{host}/.well-known/did.json"
        else:
            raise ConnectRefused(f"This kind of DID is not supported: {did}", HANDLE)
        response = await call(ctx, "GET", url, who="The DID directory", field=HANDLE)
        document = json_object(response)
        if response.status_code != 200 or document.get("id") != did:
            raise ConnectRefused(
                f"The account's DID document could not be read ({did}, HTTP "
                f"{response.status_code})",
                HANDLE,
            )
        return document


def _pds_of(document: Mapping[str, Any]) -> str | None:
    """The `#atproto_pds` service entry's endpoint (relative or full id)."""
    for service in document.get("service") or []:
        if not isinstance(service, dict):
            continue
        if str(service.get("id", "")).endswith("#atproto_pds") and (
            service.get("type") == "AtprotoPersonalDataServer"
        ):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                return endpoint.rstrip("/")
    return None


CONNECTOR = BlueskyConnector()
