"""Mastodon's publishing contract: statuses, media, Idempotency-Key, X-RateLimit-* headers; and
connecting: apps registered through /api/v1/apps, the OAuth code flow (PKCE on 4.3+),
verify_credentials and token revocation."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from postpilot.sandbox.platforms import _oauth, _replies
from postpilot.sandbox.platforms._kit import body as read_body
from postpilot.sandbox.platforms._kit import pause
from postpilot.sandbox.state import Fault, Record, SandboxState, now_iso

PLATFORM = "mastodon"
IDEMPOTENCY_SECONDS = 3600.0


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")

    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return token or None

    async def guard(request: Request) -> tuple[str, dict[str, str]] | Response:
        """Latency, auth and the token's rate-limit window, shared by every endpoint."""
        await pause(state)
        token = token_of(request)
        if token is None or token in state.revoked_tokens:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        limit, remaining, reset, over = state.hit_rate_limit(PLATFORM, token)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC).isoformat(),
        }
        if over:
            return JSONResponse({"error": "Too many requests"}, status_code=429, headers=headers)
        return token, headers

    @api.post("/api/v2/media")
    async def upload_media(request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        _token, headers = allowed
        fault = state.take_fault(PLATFORM)
        if fault and fault.kind == "bad_media":
            return JSONResponse(
                {"error": "Validation failed: File content type is invalid, File is invalid"},
                status_code=422,
            )
        if fault:
            return await _generic_fault(fault, state)
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": "Validation failed: File can't be blank"}, 422)
        content = await upload.read()
        content_type = upload.content_type or ""
        if not content_type.startswith("image/") or not content:
            return JSONResponse(
                {"error": "Validation failed: File content type is invalid, File is invalid"},
                status_code=422,
            )
        media_id = state.next_id()
        attachment = {
            "id": media_id,
            "type": "image",
            "url": f"{request.base_url}{PLATFORM}/media/{media_id}",
            "description": form.get("description"),
            "size": len(content),
            "content_type": content_type,
        }
        state.media[media_id] = attachment
        return JSONResponse(attachment, headers=headers)

    @api.get("/api/v1/media/{media_id}")
    async def get_media(media_id: str, request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        _token, headers = allowed
        if media_id not in state.media:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        return JSONResponse(state.media[media_id], headers=headers)

    @api.post("/api/v1/statuses")
    async def create_status(request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        token, headers = allowed
        body = await _body(request)
        key = request.headers.get("idempotency-key")
        async with state.lock:
            if key and (replay := _replay(state, token, key)) is not None:
                return JSONResponse(replay, headers=headers)
        reply_to = str(body["in_reply_to_id"]) if body.get("in_reply_to_id") else None
        # A thread's later parts take the faults scripted for step "reply", the post those for
        # "publish" (and both those for any step).
        fault = state.take_fault(PLATFORM, "reply" if reply_to else "publish")
        if fault and fault.kind not in ("timeout_after_commit",):
            if fault.kind == "bad_media":
                return JSONResponse({"error": "Validation failed: File is invalid"}, 422)
            if fault.kind == "duplicate":
                fault = None  # Mastodon does not reject repeated text
            else:
                return await _generic_fault(fault, state)
        text = str(body.get("status") or "")
        media_ids = [str(m) for m in body.get("media_ids") or []]
        if not text.strip() and not media_ids:
            return JSONResponse({"error": "Validation failed: Text can't be blank"}, 422)
        max_text = state.settings.max_text.get(PLATFORM, 500)
        if len(text) > max_text:
            return JSONResponse(
                {"error": f"Validation failed: Text character limit of {max_text} exceeded"}, 422
            )
        unknown = [m for m in media_ids if m not in state.media]
        if unknown:
            return JSONResponse({"error": "Validation failed: Media is invalid"}, 422)
        if reply_to is not None and _replies.find(state, PLATFORM, reply_to) is None:
            return JSONResponse({"error": "Record not found"}, 404)
        async with state.lock:
            if key and (replay := _replay(state, token, key)) is not None:
                return JSONResponse(replay, headers=headers)
            status_id = state.next_id()
            status = {
                "id": status_id,
                "uri": f"{request.base_url}{PLATFORM}/users/sandbox/statuses/{status_id}",
                "url": f"{request.base_url}{PLATFORM}/@sandbox/{status_id}",
                "content": f"<p>{text}</p>",
                "visibility": body.get("visibility", "public"),
                "created_at": now_iso(),
                "media_attachments": [state.media[m] for m in media_ids],
                "in_reply_to_id": reply_to,
            }
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=status_id,
                    account=token,
                    text=text,
                    media=[state.media[m] for m in media_ids],
                    idempotency_key=key,
                    received_at=status["created_at"],
                    extra={"in_reply_to_id": reply_to} if reply_to else {},
                )
            )
            if key:
                state.idempotency[(PLATFORM, token, key)] = (time.time(), status)
        if fault and fault.kind == "timeout_after_commit":
            await asyncio.sleep(fault.hold_seconds)
        return JSONResponse(status, headers=headers)

    _connect_routes(api, state)
    return api


INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)


def _connect_routes(api: APIRouter, state: SandboxState) -> None:
    apps: dict[str, dict[str, Any]] = {}  # client id -> the registered app
    state.on_reset.append(apps.clear)

    @api.post("/api/v1/apps")
    async def create_app(request: Request) -> Response:
        await pause(state)
        values = await read_body(request)
        uris = values.get("redirect_uris") or ""
        redirect_uris = uris.split() if isinstance(uris, str) else [str(u) for u in uris]
        if not values.get("client_name"):
            return JSONResponse(
                {"error": "Validation failed: Application name can't be blank"}, 422
            )
        if not redirect_uris or not all(
            u == "urn:ietf:wg:oauth:2.0:oob" or u.startswith(("http://", "https://"))
            for u in redirect_uris
        ):
            return JSONResponse(
                {"error": "Validation failed: Redirect URI must be an absolute URI."}, 422
            )
        client_id, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        app = {
            "id": state.next_id(),
            "name": str(values["client_name"]),
            "website": values.get("website"),
            "scopes": str(values.get("scopes") or "read").split(),
            "redirect_uri": "\n".join(redirect_uris),
            "redirect_uris": redirect_uris,
            "client_id": client_id,
            "client_secret": secret,
            "client_secret_expires_at": 0,
        }
        apps[client_id] = app
        # The shared authorization server then holds the app to its secret and redirect URIs.
        state.settings.oauth_clients[client_id] = {"secret": secret, "redirect_uris": redirect_uris}
        return JSONResponse(app)

    @api.get("/.well-known/oauth-authorization-server")
    async def metadata(request: Request) -> Response:
        await pause(state)
        if not state.settings.mastodon_pkce:
            return JSONResponse({"error": "Not Found"}, 404)
        base = f"{str(request.base_url).rstrip('/')}/{PLATFORM}"
        return JSONResponse(
            {
                "issuer": f"{base}/",
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "revocation_endpoint": f"{base}/oauth/revoke",
                "userinfo_endpoint": f"{base}/oauth/userinfo",
                "app_registration_endpoint": f"{base}/api/v1/apps",
                "scopes_supported": ["read", "write", "profile", "write:statuses", "write:media"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
            }
        )

    @api.get("/oauth/authorize")
    async def authorize(request: Request) -> Response:
        await pause(state)
        app = apps.get(request.query_params.get("client_id", ""))
        if app is None:
            return HTMLResponse("<h1>Client authentication failed</h1><p>Unknown client.</p>", 401)
        wanted = request.query_params.get("scope", "read").split()
        if any(scope not in app["scopes"] for scope in wanted):
            return HTMLResponse(
                "<h1>The requested scope is invalid, unknown, or malformed.</h1>", 400
            )
        if not state.settings.mastodon_pkce:  # an older server ignores PKCE parameters
            kept = [
                (k, v)
                for k, v in request.query_params.multi_items()
                if k not in ("code_challenge", "code_challenge_method")
            ]
            scope = {**request.scope, "query_string": urlencode(kept).encode()}
            request = Request(scope, request.receive)
        return _oauth.server(request).authorize(request, PLATFORM)

    @api.post("/oauth/token")
    async def token(request: Request) -> Response:
        await pause(state)
        values = await read_body(request)
        client_id = str(values.get("client_id") or "")
        if client_id not in apps or apps[client_id]["client_secret"] != values.get("client_secret"):
            return JSONResponse(
                {"error": "invalid_client", "error_description": INVALID_CLIENT}, 401
            )
        if values.get("grant_type") != "authorization_code":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported.",
                },
                400,
            )
        verifier = values.get("code_verifier") if state.settings.mastodon_pkce else None
        redeemed = _oauth.server(request).redeem(
            PLATFORM,
            str(values.get("code") or ""),
            client_id=client_id,
            redirect_uri=str(values.get("redirect_uri") or ""),
            code_verifier=str(verifier) if verifier else None,
        )
        if isinstance(redeemed, _oauth.Refused):
            return JSONResponse({"error": "invalid_grant", "error_description": INVALID_GRANT}, 400)
        issued = state.issue_tokens(PLATFORM, redeemed.code.subject, refresh=False)
        return JSONResponse(
            {
                "access_token": issued["access_token"],
                "token_type": "Bearer",
                "scope": redeemed.code.scope,
                "created_at": int(time.time()),
            }
        )

    @api.post("/oauth/revoke")
    async def revoke(request: Request) -> Response:
        await pause(state)
        values = await read_body(request)
        client_id = str(values.get("client_id") or "")
        if client_id not in apps or apps[client_id]["client_secret"] != values.get("client_secret"):
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "You are not authorized to revoke this token",
                },
                403,
            )
        state.revoked_tokens.add(str(values.get("token") or ""))
        return JSONResponse({})

    @api.get("/api/v1/accounts/verify_credentials")
    async def verify_credentials(request: Request) -> Response:
        await pause(state)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if state.check_token(PLATFORM, token) != "ok":
            return JSONResponse({"error": "The access token is invalid"}, 401)
        subject = state.subject_of(token)
        account_id = str(int(hashlib.sha256(subject.encode()).hexdigest()[:12], 16))
        base = f"{str(request.base_url).rstrip('/')}/{PLATFORM}"
        return JSONResponse(
            {
                "id": account_id,
                "username": subject,
                "acct": subject,
                "display_name": subject.replace("-", " ").title(),
                "url": f"{base}/@{subject}",
                "avatar": f"{base}/avatars/{account_id}.png",
                "source": {"privacy": "public", "language": "en"},
            }
        )


def _replay(state: SandboxState, token: str, key: str) -> dict[str, Any] | None:
    stored = state.idempotency.get((PLATFORM, token, key))
    if stored and time.time() - stored[0] < IDEMPOTENCY_SECONDS:
        return stored[1]
    return None


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
        return data if isinstance(data, dict) else {}
    form = await request.form()
    return {
        "status": form.get("status"),
        "media_ids": form.getlist("media_ids[]"),
        "visibility": form.get("visibility") or "public",
    }


async def _generic_fault(fault: Fault, state: SandboxState) -> Response:
    if fault.kind == "rate_limit":
        reset = datetime.fromtimestamp(time.time() + fault.retry_after_seconds, UTC)
        return JSONResponse(
            {"error": "Too many requests"},
            status_code=429,
            headers={
                "X-RateLimit-Limit": str(state.settings.rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.isoformat(),
            },
        )
    if fault.kind == "expired_token":
        return JSONResponse({"error": "The access token is invalid"}, status_code=401)
    if fault.kind == "unavailable":
        return JSONResponse({"error": "Service unavailable"}, status_code=503)
    if fault.kind == "timeout":
        await asyncio.sleep(fault.hold_seconds)
        return JSONResponse({"error": "too late"}, status_code=504)
    return JSONResponse({"error": "Internal server error"}, status_code=fault.status or 500)
