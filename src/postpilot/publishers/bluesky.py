"""Bluesky (atproto): `com.atproto.repo.createRecord` on the account's PDS with a record key
derived from the delivery, images via `uploadBlob` (blobs reused per account), sessions renewed
with `refreshSession` (refreshJwt as Bearer) or, failing that, `createSession` with the stored
app password.

IDEMPOTENT: the rkey is a TID made from the delivery's idempotency key and scheduled time, so a
repeat cannot create a second record; the PDS answers 500 for an existing rkey, and after any
error or timeout `getRecord(rkey)` tells whether the post exists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from postpilot.core import outcomes
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, chain, errors, flow
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    Refreshed,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option
from postpilot.publishers.parts import Part, SentPart

DEFAULT_BASE = "https://bsky.social"
COLLECTION = "app.bsky.feed.post"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
BLOB_TTL_SECONDS = 3600.0  # the PDS drops blobs no record references after a while
TOKEN_ERRORS = ("ExpiredToken", "InvalidToken", "AuthMissing", "AuthenticationRequired")
_LINK = re.compile(r"https?://[^\s<>\"]+")


def record_key(idempotency_key: str, scheduled_at: datetime) -> str:
    """A TID (13 base32-sortable characters of `µs << 10 | clock id`) that is the same on every
    attempt of a delivery: its timestamp is the scheduled second plus a microsecond offset, and
    its clock id, both taken from a hash of the idempotency key. Two deliveries to one account
    at the same second collide with odds of about one in a billion."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    micros = int(scheduled_at.timestamp()) * 1_000_000 + int.from_bytes(digest[:4]) % 1_000_000
    value = (micros << 10) | (int.from_bytes(digest[4:6]) % 1024)
    return "".join(TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT, read without verifying it (only to plan the next refresh)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def link_facets(text: str) -> list[dict[str, Any]]:
    """Bluesky shows links only where a facet marks them (UTF-8 byte offsets)."""
    facets = []
    for match in _LINK.finditer(text):
        url = match.group().rstrip(".,;:!?)")
        start = len(text[: match.start()].encode())
        facets.append(
            {
                "index": {"byteStart": start, "byteEnd": start + len(url.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": url}],
            }
        )
    return facets


class BlueskyPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "bluesky"
    max_in_flight_per_account: ClassVar[int] = 4
    recovery: ClassVar[Recovery] = Recovery.IDEMPOTENT
    can_refresh: ClassVar[bool] = True
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("did", "The account's DID, as its session gives it.", secret=False),
            credential("access_jwt", "The session's access token (accessJwt)."),
            credential("refresh_jwt", "The session's refresh token (refreshJwt)."),
            credential("identifier", "Handle or email, to sign in with `password`.", secret=False),
            credential("password", "An app password, to sign in when the session is dead."),
            credential(
                "pds_url",
                f"The account's PDS (default {DEFAULT_BASE}).",
                secret=False,
                server_url=True,
            ),
            option("langs", 'Languages of the posts, e.g. ["en"].'),
        ),
        credential_sets=(("did", "access_jwt"), ("identifier", "password")),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        did, token = account.credentials.get("did"), account.credentials.get("access_jwt")
        if not did or not token:
            return outcomes.TokenExpired("bluesky: the account has no session")
        base = _base(ctx, account)
        headers = {"Authorization": f"Bearer {token}"}
        key = budgets.account_key(self.platform, account.id)
        await flow.check_budget(ctx, self.platform, [key])

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            try:
                return await self._post(request, index, part, before, did, base, headers, ctx)
            except flow.Stop as stop:
                return stop.outcome

        return await chain.publish_parts(request, send)

    async def _post(
        self,
        request: PublishRequest,
        index: int,
        part: Part,
        before: tuple[SentPart, ...],
        did: str,
        base: str,
        headers: dict[str, str],
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        """Create one part's record under a key of its own (the post keeps the delivery's), a
        reply pointing at the thread's first post and the part before it."""
        account = request.account
        key = budgets.account_key(self.platform, account.id)
        rkey = record_key(chain.part_key(request, index), request.scheduled_at)
        retry = request.recovered or request.attempt > 1
        if retry and (cid := await self._exists(base, did, rkey, headers, ctx)) is not None:
            return self._sent(index, account, did, rkey, cid, existed=True)
        images = [await self._image(base, url, headers, account, ctx) for url in part.media_urls]
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": part.text,
            "createdAt": ctx.now().astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
        }
        if langs := account.options.get("langs"):
            record["langs"] = list(langs)
        if facets := link_facets(part.text):
            record["facets"] = facets
        if images:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        if before:
            record["reply"] = {"root": _strong_ref(before[0]), "parent": _strong_ref(before[-1])}
        body = {"repo": did, "collection": COLLECTION, "rkey": rkey, "record": record}
        try:
            response = await flow.send(
                ctx,
                "POST",
                f"{base}/xrpc/com.atproto.repo.createRecord",
                what="bluesky createRecord",
                final=True,
                json=body,
                headers=headers,
            )
        except flow.Stop as stop:
            # Timed out after sending: the record key says whether it was created.
            if (
                isinstance(stop.outcome, outcomes.Ambiguous)
                and (cid := await self._exists(base, did, rkey, headers, ctx)) is not None
            ):
                return self._sent(index, account, did, rkey, cid, existed=True)
            raise
        await _note_budget(response, ctx, key)
        if response.status_code == 200:
            cid = str(flow.body_of(response).get("cid") or "")
            return self._sent(index, account, did, rkey, cid, existed=False)
        if (
            response.status_code >= 500
            and (cid := await self._exists(base, did, rkey, headers, ctx)) is not None
        ):
            # 500 is what the PDS answers for an rkey that exists: this part's post.
            return self._sent(index, account, did, rkey, cid, existed=True)
        message = f"bluesky createRecord: {_error_text(response)}"
        if response.status_code == 400 and "blob" in message.lower():
            for url in part.media_urls:
                await ctx.uploads.forget(self.platform, account.id, url)
            return outcomes.Transient(f"{message} (uploading the images again)", 0)
        return await _failure(response, ctx, key, message)

    def _sent(
        self, index: int, account: AccountContext, did: str, rkey: str, cid: str, *, existed: bool
    ) -> SentPart:
        profile = account.handle.lstrip("@") or did
        return SentPart(
            index,
            platform_post_id=f"at://{did}/{COLLECTION}/{rkey}",
            url=f"https://bsky.app/profile/{profile}/post/{rkey}",
            ref=cid or None,
            existed=existed,
        )

    async def _exists(
        self, base: str, did: str, rkey: str, headers: dict[str, str], ctx: PublishContext
    ) -> str | None:
        """The cid of the record at `rkey` ("" when the answer has none), None when absent."""
        try:
            response = await ctx.http.get(
                f"{base}/xrpc/com.atproto.repo.getRecord",
                params={"repo": did, "collection": COLLECTION, "rkey": rkey},
                headers=headers,
            )
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        return str(flow.body_of(response).get("cid") or "")

    async def _image(
        self,
        base: str,
        url: str,
        headers: dict[str, str],
        account: AccountContext,
        ctx: PublishContext,
    ) -> dict[str, Any]:
        blob = await ctx.uploads.get(self.platform, account.id, url)
        if not isinstance(blob, dict):
            media = await flow.fetch_media(ctx, url)
            response = await flow.send(
                ctx,
                "POST",
                f"{base}/xrpc/com.atproto.repo.uploadBlob",
                what="bluesky uploadBlob",
                final=False,
                content=media.content,
                headers={**headers, "Content-Type": media.content_type},
            )
            if response.status_code != 200:
                message = f"bluesky uploadBlob of {url}: {_error_text(response)}"
                if response.status_code in (400, 413):
                    raise flow.Stop(outcomes.Permanent(message))
                key = budgets.account_key(self.platform, account.id)
                raise flow.Stop(await _failure(response, ctx, key, message))
            blob = flow.body_of(response)["blob"]
            await ctx.uploads.put(self.platform, account.id, url, blob, BLOB_TTL_SECONDS)
        return {"alt": "", "image": blob}

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        credentials = account.credentials
        base = _base(ctx, account)
        refresh_jwt = credentials.get("refresh_jwt")
        reason = "the account has no refresh token"
        if refresh_jwt:
            try:
                response = await ctx.http.post(
                    f"{base}/xrpc/com.atproto.server.refreshSession",
                    headers={"Authorization": f"Bearer {refresh_jwt}"},
                )
            except httpx.TransportError as exc:
                return flow.refresh_unavailable("Bluesky", exc)
            if response.status_code == 429 or response.status_code >= 500:
                return flow.refresh_unavailable("Bluesky", response)
            if response.status_code == 200:
                return _session(credentials, flow.body_of(response))
            reason = _error_text(response)
        if credentials.get("identifier") and credentials.get("password"):
            return await self._login(base, credentials, ctx)
        return RefreshFailed(
            f"Bluesky would not renew the session ({reason}): reconnect the account with an "
            "app password"
        )

    async def _login(
        self, base: str, credentials: dict[str, Any], ctx: PublishContext
    ) -> RefreshResult:
        try:
            response = await ctx.http.post(
                f"{base}/xrpc/com.atproto.server.createSession",
                json={"identifier": credentials["identifier"], "password": credentials["password"]},
            )
        except httpx.TransportError as exc:
            return flow.refresh_unavailable("Bluesky", exc)
        if response.status_code == 429 or response.status_code >= 500:
            return flow.refresh_unavailable("Bluesky", response)
        if response.status_code != 200:
            return RefreshFailed(
                f"Bluesky refused the stored app password ({_error_text(response)}): "
                "reconnect the account with a new app password"
            )
        return _session(credentials, flow.body_of(response))


def _strong_ref(part: SentPart) -> dict[str, str]:
    return {"uri": part.platform_post_id, "cid": part.ref or ""}


def _base(ctx: PublishContext, account: AccountContext) -> str:
    return ctx.base_url("bluesky", account, account.credentials.get("pds_url") or DEFAULT_BASE)


def _session(credentials: dict[str, Any], body: dict[str, Any]) -> RefreshResult:
    access = body.get("accessJwt")
    if not isinstance(access, str) or not access:
        return RefreshFailed("Bluesky answered without a session: reconnect the account")
    new = {
        **credentials,
        "did": body.get("did") or credentials.get("did"),
        "access_jwt": access,
        "refresh_jwt": flow.keep_refresh_token(credentials, body.get("refreshJwt"), "refresh_jwt"),
    }
    return Refreshed(credentials=new, expires_at=jwt_expiry(access))


def _error_text(response: httpx.Response) -> str:
    body = flow.body_of(response)
    name, message = body.get("error"), body.get("message")
    if name or message:
        return f"{name}: {message}" if name and message else str(name or message)
    return errors.error_text(response)


async def _note_budget(response: httpx.Response, ctx: PublishContext, key: str) -> None:
    await ctx.budgets.update(
        key,
        remaining=budgets.parse_int(response.headers.get("ratelimit-remaining")),
        reset_at=errors.epoch_or_none(response.headers.get("ratelimit-reset")),
        reason=f"bluesky limit {response.headers.get('ratelimit-policy', '')}".strip(),
    )


async def _failure(
    response: httpx.Response, ctx: PublishContext, key: str, message: str
) -> outcomes.Outcome:
    code = response.status_code
    name = str(flow.body_of(response).get("error") or "")
    if code == 401 or (code == 400 and name in TOKEN_ERRORS):
        return outcomes.TokenExpired(f"bluesky rejected the session ({message})")
    if code == 429:
        fallback = ctx.now() + timedelta(minutes=5)
        until = errors.epoch_or_none(response.headers.get("ratelimit-reset"))
        if until is None and (retry := errors.retry_after_seconds(response)) is not None:
            until = ctx.now() + timedelta(seconds=retry)
        until = until or fallback
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if code >= 500:
        return errors.server_error_outcome(response, "bluesky")
    return outcomes.Permanent(message)
