"""Slack Web API: `chat.postMessage` (HTTP 200 with `ok`/`error`, image blocks Slack downloads),
HTTP 429 with Retry-After, token rotation through `oauth.v2.access`; and installing the app: the
consent page (/oauth/v2/authorize), the code grant of `oauth.v2.access` (with rotation per the
`slack_token_rotation` setting), auth.test, conversations.list, auth.revoke."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit, _oauth
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "slack"
TEAM = {"id": "T0SANDBOX", "name": "Sandbox workspace"}
BOT_USER = "U0SANDBOXBOT"


def _error(error: str, status: int = 200, **extra: Any) -> Response:
    return JSONResponse({"ok": False, "error": error, **extra}, status_code=status)


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix="/api")

    def throttled(seconds: float) -> Response:
        response = _error(state.settings.slack_rate_limit_error, 429)
        response.headers["Retry-After"] = str(max(1, int(seconds + 0.999)))
        return response

    def rate_limited(fault: Fault) -> Response:
        return throttled(fault.retry_after_seconds)

    answers = _kit.Answers(
        rate_limited=rate_limited,
        expired=lambda: _error("token_expired"),
        bad_media=lambda: _error(
            "invalid_blocks", errors=["downloading image failed [json-pointer:/blocks/1/image_url]"]
        ),
        duplicate=lambda: _error("duplicate_message_not_found"),
        error=lambda status: _error("internal_error", status),
    )

    @api.post("/chat.postMessage")
    async def post_message(request: Request) -> Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        status = state.check_token(PLATFORM, token)
        if status == "expired":
            return _error("token_expired")
        if status != "ok" or token is None:
            return _error("token_revoked" if token in state.revoked_tokens else "invalid_auth")
        values = await _kit.body(request)
        channel = str(values.get("channel") or "")
        _limit, _remaining, reset, over = state.hit_rate_limit(PLATFORM, f"{token}:{channel}")
        if over:
            return throttled(reset - time.time())
        fault = state.take_fault(PLATFORM, "publish")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        if not channel:
            return _error("channel_not_found")
        text = str(values.get("text") or "")
        blocks = _kit.json_field(values.get("blocks")) or []
        if not text.strip() and not blocks:
            return _error("no_text")
        if len(text) > state.settings.max_text.get(PLATFORM, 40_000):
            return _error("msg_too_long")
        media = []
        for index, block in enumerate(blocks if isinstance(blocks, list) else []):
            if isinstance(block, dict) and block.get("type") == "image":
                downloaded = await _kit.download(str(block.get("image_url") or ""))
                if downloaded is None:
                    return _error(
                        "invalid_blocks",
                        errors=[
                            f"downloading image failed [json-pointer:/blocks/{index}/image_url]"
                        ],
                    )
                media.append(_kit.media_entry(state.next_id(), *downloaded, url=block["image_url"]))
        ts = f"{time.time():.6f}"
        state.remember(
            Record(
                platform=PLATFORM,
                id=ts,
                account=channel,
                text=text,
                media=media,
                idempotency_key=None,
                received_at=datetime.now(UTC).isoformat(),
                extra={
                    "token_subject": state.subject_of(token),
                    "metadata": _kit.json_field(values.get("metadata")),
                },
            )
        )
        await _kit.hold_after_commit(fault)
        message = {"type": "message", "text": text, "ts": ts, "bot_id": "B0SANDBOX"}
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message})

    @api.api_route("/conversations.history", methods=["GET", "POST"])
    async def history(request: Request) -> Response:
        """Newest first, after `oldest`, `limit` per page with a cursor; message metadata only
        with `include_all_metadata`. Text comes back with &, < and > escaped, as Slack's does."""
        await _kit.pause(state)
        token = _kit.bearer(request)
        status = state.check_token(PLATFORM, token)
        if status != "ok" or token is None:
            return _error("token_expired" if status == "expired" else "invalid_auth")
        fault = state.take_fault(PLATFORM, "read")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        values = await _kit.body(request)
        channel = str(values.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        try:
            oldest = float(values.get("oldest") or 0)
            limit = max(1, min(int(values.get("limit") or 100), 999))
            offset = int(values.get("cursor") or 0)
        except ValueError:
            return _error("invalid_arguments")
        metadata = str(values.get("include_all_metadata")).lower() in ("true", "1")
        found = sorted(
            (
                r
                for r in state.records
                if r.platform == PLATFORM and r.account == channel and float(r.id) > oldest
            ),
            key=lambda r: float(r.id),
            reverse=True,
        )
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        messages = []
        for record in page:
            text = record.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            message: dict[str, Any] = {
                "type": "message",
                "text": text,
                "ts": record.id,
                "bot_id": "B0SANDBOX",
            }
            if metadata and record.extra.get("metadata"):
                message["metadata"] = record.extra["metadata"]
            messages.append(message)
        return JSONResponse(
            {
                "ok": True,
                "messages": messages,
                "has_more": more,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
            }
        )

    @api.post("/oauth.v2.access")
    async def oauth_access(request: Request) -> Response:
        await _kit.pause(state)
        fault = state.take_fault(PLATFORM, "refresh")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        values = await _kit.body(request)
        if values.get("grant_type") in (None, "", "authorization_code"):
            return install(request, values)
        if values.get("grant_type") != "refresh_token":
            return _error("invalid_grant_type")
        if not values.get("client_id") or not values.get("client_secret"):
            return _error("invalid_client_id")
        issued = state.refresh_grant(PLATFORM, str(values.get("refresh_token") or ""), rotate=True)
        if issued is None:
            return _error("invalid_refresh_token")
        return JSONResponse(
            {
                "ok": True,
                "access_token": issued["access_token"],
                "refresh_token": issued["refresh_token"],
                "expires_in": issued["expires_in"],
                "token_type": "bot",
            }
        )

    def install(request: Request, values: dict[str, Any]) -> Response:
        """The code grant: the app's id and secret, the code, the same redirect URI."""
        oauth = _oauth.server(request)
        client_id = str(values.get("client_id") or "")
        if not client_id:
            return _error("invalid_client_id")
        if not oauth.client_secret_ok(client_id, str(values.get("client_secret") or "")):
            return _error("bad_client_secret")
        redeemed = oauth.redeem(
            PLATFORM,
            str(values.get("code") or ""),
            client_id=client_id,
            redirect_uri=str(values.get("redirect_uri") or ""),
            code_verifier=None,
        )
        if isinstance(redeemed, _oauth.Refused):
            error = "bad_redirect_uri" if redeemed.reason == "redirect_mismatch" else "invalid_code"
            return _error(error)
        rotation = state.settings.slack_token_rotation
        issued = state.issue_tokens(
            PLATFORM, redeemed.code.subject, expires_in=None if rotation else 0, refresh=rotation
        )
        declined = state.settings.connect_declined_scopes.get(PLATFORM, [])
        scopes = [s for s in redeemed.code.scope.split(",") if s and s not in declined]
        answer: dict[str, Any] = {
            "ok": True,
            "access_token": issued["access_token"],
            "token_type": "bot",
            "scope": ",".join(scopes),
            "bot_user_id": BOT_USER,
            "app_id": "A0SANDBOX",
            "team": TEAM,
            "enterprise": None,
            "authed_user": {"id": "U0SANDBOXUSER"},
            "is_enterprise_install": False,
        }
        if rotation:
            answer |= {"expires_in": issued["expires_in"], "refresh_token": issued["refresh_token"]}
        return JSONResponse(answer)

    def token_problem(token: str | None) -> Response | None:
        status = state.check_token(PLATFORM, token)
        if status == "expired":
            return _error("token_expired")
        if status != "ok" or token is None:
            return _error("token_revoked" if token in state.revoked_tokens else "invalid_auth")
        return None

    @api.api_route("/auth.test", methods=["GET", "POST"])
    async def auth_test(request: Request) -> Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        if (problem := token_problem(token)) is not None:
            return problem
        return JSONResponse(
            {
                "ok": True,
                "url": "https://sandbox-workspace.slack.com/",
                "team": TEAM["name"],
                "user": "postpilot",
                "team_id": TEAM["id"],
                "user_id": BOT_USER,
                "bot_id": "B0SANDBOX",
            }
        )

    @api.api_route("/conversations.list", methods=["GET", "POST"])
    async def conversations_list(request: Request) -> Response:
        """The workspace's channels (the `slack_channels` setting): private ones only where
        the bot is a member, `limit` per page with a cursor."""
        await _kit.pause(state)
        token = _kit.bearer(request)
        if (problem := token_problem(token)) is not None:
            return problem
        values = await _kit.body(request)
        types = str(values.get("types") or "public_channel").split(",")
        try:
            limit = max(1, min(int(values.get("limit") or 100), 1000))
            offset = int(values.get("cursor") or 0)
        except ValueError:
            return _error("invalid_cursor")
        visible = [
            {"is_archived": False, "is_channel": not c.get("is_private"), **c}
            for c in state.settings.slack_channels
            if ("private_channel" if c.get("is_private") else "public_channel") in types
            and (not c.get("is_private") or c.get("is_member"))
        ]
        page = visible[offset : offset + limit]
        more = offset + limit < len(visible)
        return JSONResponse(
            {
                "ok": True,
                "channels": page,
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
            }
        )

    @api.api_route("/auth.revoke", methods=["GET", "POST"])
    async def auth_revoke(request: Request) -> Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        if (problem := token_problem(token)) is not None:
            return problem
        values = await _kit.body(request)
        if str(values.get("test")) not in ("1", "true"):
            state.revoked_tokens.add(str(token))
        return JSONResponse({"ok": True, "revoked": True})

    outer = APIRouter(prefix=f"/{PLATFORM}")
    outer.include_router(api)

    @outer.get("/oauth/v2/authorize")
    async def authorize(request: Request) -> Response:
        await _kit.pause(state)
        return _oauth.server(request).authorize(request, PLATFORM)

    return outer
