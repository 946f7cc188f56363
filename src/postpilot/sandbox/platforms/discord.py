"""Discord webhooks: `POST /api/webhooks/{id}/{token}?wait=true` with JSON or multipart
(`payload_json` + `files[n]`), X-RateLimit-* bucket headers, 429 with Retry-After and
`retry_after`, 404 Unknown Webhook / 401 Invalid Webhook Token; and connecting: get and delete a
webhook, OAuth2 with `webhook.incoming` whose token reply carries a webhook made for the app,
token revocation."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit, _oauth
from postpilot.sandbox.state import Fault, Record, SandboxState, Token

PLATFORM = "discord"
CHANNEL_ID = "200000000000000001"  # every sandbox webhook posts to this channel
GUILD_ID = "100000000000000001"
DISCORD_EPOCH_MS = 1_420_070_400_000


def _error(status: int, message: str, code: int, **extra: Any) -> Response:
    return JSONResponse({"message": message, "code": code, **extra}, status_code=status)


def _throttled(retry_after: float, limit: int) -> Response:
    return JSONResponse(
        {
            "message": "You are being rate limited.",
            "retry_after": round(retry_after, 3),
            "global": False,
        },
        status_code=429,
        headers={
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": "sandbox-webhook",
            "X-RateLimit-Global": "false",
            "X-RateLimit-Scope": "user",
        },
    )


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")

    def throttled(fault: Fault) -> Response:
        return _throttled(fault.retry_after_seconds, state.settings.rate_limit)

    answers = _kit.Answers(
        rate_limited=throttled,
        expired=lambda: _error(401, "Invalid Webhook Token", 50027),
        bad_media=lambda: _error(400, "Invalid Form Body", 50035, errors={"files": {}}),
        duplicate=lambda: _error(400, "Invalid Form Body", 50035),
        error=lambda status: _error(status, "Internal Server Error", 0),
    )

    @api.post("/api/webhooks/{webhook_id}/{token}")
    async def execute(webhook_id: str, token: str, request: Request) -> Response:
        await _kit.pause(state)
        if token in state.revoked_tokens:
            return _error(404, "Unknown Webhook", 10015)
        if state.check_token(PLATFORM, token) != "ok":
            return _error(401, "Invalid Webhook Token", 50027)
        limit, remaining, reset, over = state.hit_rate_limit(PLATFORM, webhook_id)
        if over:
            return _throttled(reset - time.time(), limit)
        fault = state.take_fault(PLATFORM, "publish")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        payload, files = await _payload(request)
        content = str(payload.get("content") or "")
        if not content and not files and not payload.get("embeds"):
            return _error(400, "Cannot send an empty message", 50006)
        if len(content) > state.settings.max_text.get(PLATFORM, 2000):
            return _error(
                400,
                "Invalid Form Body",
                50035,
                errors={
                    "content": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": "Must be 2000 or fewer in length.",
                            }
                        ]
                    }
                },
            )
        if any(len(f["content"]) > state.settings.discord_max_upload_bytes for f in files):
            return _error(413, "Request entity too large", 40005)
        message_id = _snowflake(state)
        attachments = [
            _kit.media_entry(
                state.next_id(), f["content"], f["content_type"], filename=f["filename"]
            )
            for f in files
        ]
        state.remember(
            Record(
                platform=PLATFORM,
                id=message_id,
                account=webhook_id,
                text=content,
                media=attachments,
                idempotency_key=None,
                received_at=datetime.now(UTC).isoformat(),
                extra={"channel_id": CHANNEL_ID, "webhook_id": webhook_id},
            )
        )
        await _kit.hold_after_commit(fault)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{max(0.0, reset - time.time()):.3f}",
            "X-RateLimit-Bucket": "sandbox-webhook",
        }
        if request.query_params.get("wait") != "true":
            return Response(status_code=204, headers=headers)
        message = {
            "id": message_id,
            "type": 0,
            "channel_id": CHANNEL_ID,
            "webhook_id": webhook_id,
            "content": content,
            "timestamp": datetime.now(UTC).isoformat(),
            "attachments": [
                {k: a[k] for k in ("id", "size", "content_type", "filename")} for a in attachments
            ],
        }
        return JSONResponse(message, headers=headers)

    @api.get("/api/v10/channels/{channel_id}/messages")
    async def channel_messages(channel_id: str, request: Request) -> Response:
        """A bot reading a channel (`Authorization: Bot <token>`): the `limit` messages right
        after the `after` id, newest first, as Discord answers."""
        await _kit.pause(state)
        header = request.headers.get("authorization", "")
        token = header[4:].strip() if header.startswith("Bot ") else ""
        if not token or state.check_token(PLATFORM, token) != "ok":
            return _error(401, "401: Unauthorized", 0)
        fault = state.take_fault(PLATFORM, "read")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        try:
            after = int(request.query_params.get("after") or 0)
            limit = max(1, min(int(request.query_params.get("limit") or 50), 100))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        found = sorted(
            (
                r
                for r in state.records
                if r.platform == PLATFORM
                and r.extra.get("channel_id") == channel_id
                and int(r.id) > after
            ),
            key=lambda r: int(r.id),
        )[:limit]
        messages = [
            {
                "id": r.id,
                "type": 0,
                "channel_id": channel_id,
                "webhook_id": r.extra.get("webhook_id"),
                "content": r.text,
                "timestamp": r.received_at,
            }
            for r in reversed(found)
        ]
        return JSONResponse(messages)

    _connect_routes(api, state)
    return api


def _connect_routes(api: APIRouter, state: SandboxState) -> None:
    made: dict[str, dict[str, Any]] = {}  # webhook id -> webhooks the OAuth flow made
    state.on_reset.append(made.clear)

    def webhook_of(webhook_id: str, token: str) -> dict[str, Any] | Response:
        known = made.get(webhook_id)
        if token in state.revoked_tokens or (known is not None and known["token"] != token):
            return _error(404, "Unknown Webhook", 10015)
        if state.check_token(PLATFORM, token) != "ok":
            return _error(401, "Invalid Webhook Token", 50027)
        if known is not None:
            return known
        # A webhook someone made in Discord's settings (any id and token the sandbox accepts).
        return {
            "id": webhook_id,
            "type": 1,
            "guild_id": GUILD_ID,
            "channel_id": CHANNEL_ID,
            "name": "Sandbox webhook",
            "avatar": None,
            "application_id": None,
            "token": token,
        }

    @api.get("/api/webhooks/{webhook_id}/{token}")
    async def get_webhook(webhook_id: str, token: str) -> Response:
        await _kit.pause(state)
        found = webhook_of(webhook_id, token)
        return found if isinstance(found, Response) else JSONResponse(found)

    @api.delete("/api/webhooks/{webhook_id}/{token}")
    async def delete_webhook(webhook_id: str, token: str) -> Response:
        await _kit.pause(state)
        found = webhook_of(webhook_id, token)
        if isinstance(found, Response):
            return found
        state.revoked_tokens.add(token)  # posting then answers Unknown Webhook
        made.pop(webhook_id, None)
        return Response(status_code=204)

    @api.get("/oauth2/authorize")
    async def authorize(request: Request) -> Response:
        await _kit.pause(state)
        return _oauth.server(request).authorize(request, PLATFORM)

    def client_of(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return client_id, secret

    @api.post("/api/oauth2/token")
    async def token(request: Request) -> Response:
        await _kit.pause(state)
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        values = await _kit.body(request)
        client = client_of(request)
        oauth = _oauth.server(request)
        if client is None or not oauth.client_secret_ok(*client):
            return JSONResponse({"error": "invalid_client"}, 401)
        if values.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        redeemed = oauth.redeem(
            PLATFORM,
            str(values.get("code") or ""),
            client_id=client[0],
            redirect_uri=str(values.get("redirect_uri") or ""),
            code_verifier=None,
        )
        if isinstance(redeemed, _oauth.Refused):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}, 400
            )
        subject = redeemed.code.subject
        issued = state.issue_tokens(PLATFORM, subject, expires_in=604_800)
        webhook_id, webhook_token = _snowflake(state), secrets.token_urlsafe(48)
        state.tokens[webhook_token] = Token(PLATFORM, subject, "access", None)
        made[webhook_id] = {
            "application_id": client[0],
            "name": "postpilot",
            "url": f"{request.base_url}{PLATFORM}/api/webhooks/{webhook_id}/{webhook_token}",
            "channel_id": CHANNEL_ID,
            "token": webhook_token,
            "type": 1,
            "avatar": None,
            "guild_id": GUILD_ID,
            "id": webhook_id,
        }
        return JSONResponse(
            {
                "token_type": "Bearer",
                "access_token": issued["access_token"],
                "scope": redeemed.code.scope,
                "expires_in": issued["expires_in"],
                "refresh_token": issued["refresh_token"],
                "webhook": made[webhook_id],
            }
        )

    @api.post("/api/oauth2/token/revoke")
    async def revoke(request: Request) -> Response:
        await _kit.pause(state)
        client = client_of(request)
        if client is None or not _oauth.server(request).client_secret_ok(*client):
            return JSONResponse({"error": "invalid_client"}, 401)
        values = await _kit.body(request)
        token = str(values.get("token") or "")
        known = state.tokens.get(token)
        # Revoking one token ends every token of the authorization; whether the webhook it
        # made survives is unconfirmed: here it does.
        if known is not None:
            webhooks = {hook["token"] for hook in made.values()}
            state.revoked_tokens.update(
                t
                for t, k in state.tokens.items()
                if (k.platform, k.subject) == (PLATFORM, known.subject) and t not in webhooks
            )
        return JSONResponse({})


def _snowflake(state: SandboxState) -> str:
    """A Discord id: milliseconds since 2015 in the high bits, so ids sort by time."""
    millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return str((millis << 22) | (int(state.next_id()) & 0x3FFFFF))


async def _payload(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _kit.body(request), []
    form = await request.form()
    payload = _kit.json_field(form.get("payload_json")) or {}
    files = []
    for key, value in form.multi_items():
        upload = await _kit.upload_of(value) if key.startswith("files[") else None
        if upload is not None:
            filename = getattr(value, "filename", None) or "file"
            files.append({"content": upload[0], "content_type": upload[1], "filename": filename})
    return payload if isinstance(payload, dict) else {}, files
