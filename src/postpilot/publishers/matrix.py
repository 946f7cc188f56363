"""Matrix client-server API: `PUT /rooms/{roomId}/send/m.room.message/{txnId}` with the delivery's
idempotency key as txnId (a repeat returns the first event), images uploaded to
`/_matrix/media/v3/upload` (content URIs reused) and sent as `m.image` events. Tokens refresh
at `/refresh`; without a refresh token, the stored password logs in again.

The homeserver is the account's base_url. IDEMPOTENT.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from postpilot.core import outcomes
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, errors, flow, urls
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    Refreshed,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option

DEFAULT_BASE = "https://matrix.org"
CLIENT = "/_matrix/client/v3"
CONTENT_URI_TTL_SECONDS = 30 * 86_400.0


class MatrixPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "matrix"
    max_in_flight_per_account: ClassVar[int] = 1
    recovery: ClassVar[Recovery] = Recovery.IDEMPOTENT
    can_refresh: ClassVar[bool] = True
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("access_token", "The posting user's access token."),
            credential("refresh_token", "Its refresh token, where the homeserver gives one."),
            credential("user", "The user id, to sign in again with password.", secret=False),
            credential("password", "The user's password, to sign in when the session is dead."),
            credential("device_id", "The device to sign in as.", secret=False),
            option("room_id", "The room, e.g. !abc:matrix.org.", required=True),
        ),
        base_url=f"The homeserver (default {DEFAULT_BASE}).",
        credential_sets=(("access_token",), ("user", "password")),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token, room = account.credentials.get("access_token"), account.options.get("room_id")
        if not room:
            return outcomes.Permanent("matrix: the account has no room_id option")
        if not token:
            return outcomes.TokenExpired("matrix: the account has no access token")
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        headers = {"Authorization": f"Bearer {token}"}
        key = budgets.account_key(self.platform, account.id)
        await flow.check_budget(ctx, self.platform, [key])
        events: list[tuple[str, dict[str, Any]]] = []
        for index, url in enumerate(request.media_urls):
            uri, media_type, size = await self._upload(base, url, headers, account, ctx, key)
            content = {
                "msgtype": "m.image",
                "body": f"image{index + 1}",
                "url": uri,
                "info": {"mimetype": media_type, "size": size},
            }
            events.append((f"{request.idempotency_key}.{index + 1}", content))
        if request.text.strip():
            text = {"msgtype": "m.text", "body": request.text}
            events.insert(0, (request.idempotency_key, text))
        room_path = f"{base}{CLIENT}/rooms/{urls.segment(room)}/send/m.room.message"
        first: str | None = None
        for txn_id, content in events:
            response = await flow.send(
                ctx,
                "PUT",
                f"{room_path}/{quote(txn_id, safe='')}",
                what="matrix send",
                final=True,
                json=content,
                headers=headers,
            )
            if response.status_code != 200:
                return await _failure(response, ctx, key, "matrix send")
            first = first or str(flow.body_of(response)["event_id"])
        if first is None:
            return outcomes.Permanent("matrix: nothing to send (no text and no image)")
        return outcomes.Published(first, url=f"https://matrix.to/#/{room}/{first}")

    async def _upload(
        self,
        base: str,
        url: str,
        headers: dict[str, str],
        account: AccountContext,
        ctx: PublishContext,
        key: str,
    ) -> tuple[str, str, int]:
        cached = await ctx.uploads.get(self.platform, account.id, url)
        if isinstance(cached, list | tuple) and len(cached) == 3:
            return str(cached[0]), str(cached[1]), int(cached[2])
        media = await flow.fetch_media(ctx, url)
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/_matrix/media/v3/upload",
            what="matrix upload",
            final=False,
            params={"filename": media.filename},
            content=media.content,
            headers={**headers, "Content-Type": media.content_type},
        )
        if response.status_code != 200:
            outcome = await _failure(response, ctx, key, f"matrix upload of {url}")
            if response.status_code in (400, 413):
                outcome = outcomes.Permanent(f"matrix upload of {url}: {_describe(response)}")
            raise flow.Stop(outcome)
        entry = (str(flow.body_of(response)["content_uri"]), media.content_type, len(media.content))
        await ctx.uploads.put(self.platform, account.id, url, list(entry), CONTENT_URI_TTL_SECONDS)
        return entry

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        credentials = account.credentials
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        reason = "the account has no refresh token"
        if refresh_token := credentials.get("refresh_token"):
            result = await _grant(
                ctx, f"{base}{CLIENT}/refresh", {"refresh_token": refresh_token}, credentials
            )
            if not isinstance(result, str):
                return result
            reason = result
        if credentials.get("user") and credentials.get("password"):
            login = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": credentials["user"]},
                "password": credentials["password"],
                "refresh_token": True,
            }
            if device := credentials.get("device_id"):
                login["device_id"] = device
            result = await _grant(ctx, f"{base}{CLIENT}/login", login, credentials)
            if not isinstance(result, str):
                return result
            reason = result
        return RefreshFailed(
            f"the Matrix homeserver would not renew the session ({reason}): sign in again"
        )


async def _grant(
    ctx: PublishContext, url: str, body: dict[str, Any], credentials: dict[str, Any]
) -> RefreshResult | str:
    """New credentials, an outcome to return as is, or the reason the grant was refused."""
    try:
        response = await ctx.http.post(url, json=body)
    except httpx.TransportError as exc:
        return flow.refresh_unavailable("the Matrix homeserver", exc)
    if response.status_code == 429 or response.status_code >= 500:
        return flow.refresh_unavailable("the Matrix homeserver", response)
    answer = flow.body_of(response)
    if response.status_code != 200 or not answer.get("access_token"):
        return _describe(response)
    expires_ms = answer.get("expires_in_ms")
    new = {
        **credentials,
        "access_token": answer["access_token"],
        "refresh_token": flow.keep_refresh_token(credentials, answer.get("refresh_token")),
    }
    if answer.get("device_id"):
        new["device_id"] = answer["device_id"]
    expires = flow.expiry(ctx.now(), expires_ms / 1000) if isinstance(expires_ms, int) else None
    return Refreshed(credentials=new, expires_at=expires)


def _describe(response: httpx.Response) -> str:
    body = flow.body_of(response)
    if body.get("errcode"):
        return f"{body['errcode']}: {body.get('error', '')}".strip(": ")
    return errors.error_text(response)


async def _failure(
    response: httpx.Response, ctx: PublishContext, key: str, what: str
) -> outcomes.Outcome:
    body = flow.body_of(response)
    message = f"{what}: {_describe(response)}"
    if response.status_code == 401 or body.get("errcode") == "M_UNKNOWN_TOKEN":
        hint = "" if body.get("soft_logout") else " (the session was logged out)"
        return outcomes.TokenExpired(f"{message}{hint}")
    if response.status_code == 429 or body.get("errcode") == "M_LIMIT_EXCEEDED":
        retry_ms = body.get("retry_after_ms")
        seconds = retry_ms / 1000 if isinstance(retry_ms, int | float) else None
        seconds = seconds or errors.retry_after_seconds(response) or 5.0
        until = ctx.now() + timedelta(seconds=seconds)
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if response.status_code >= 500:
        return errors.server_error_outcome(response, what)
    return outcomes.Permanent(message)
