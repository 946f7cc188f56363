"""Bluesky (atproto XRPC) as a PDS answers it: sessions and refreshSession, uploadBlob,
createRecord with a caller-chosen TID rkey (500 when it exists), getRecord, ratelimit-* headers.
Matches what the real PDS in ../shared/peers/bluesky_pds answers. For connecting: app passwords
(`bluesky_app_passwords`), a didDoc naming this sandbox as the PDS, getSession, resolveHandle,
deleteSession, and DID documents at /bluesky/{did} as the PLC directory serves them."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from typing import Any

import regex  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "bluesky"
POST = "app.bsky.feed.post"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
MAX_BYTES = 3000


def _error(name: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": name, "message": message}, status_code=status, headers=headers)


def _did(identifier: str) -> str:
    return "did:plc:" + hashlib.sha256(identifier.encode()).hexdigest()[:24]


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix="/xrpc")
    repos: dict[tuple[str, str], dict[str, Any]] = {}  # (did, rkey) -> {"cid", "value"}
    handles: dict[str, str] = {}  # did -> handle
    state.on_reset.append(handles.clear)

    def rate_limited(fault: Fault) -> Response:
        reset = time.time() + fault.retry_after_seconds
        return _error("RateLimitExceeded", "Rate Limit Exceeded", 429, limit_headers(0, reset))

    def limit_headers(remaining: int, reset: float, limit: int | None = None) -> dict[str, str]:
        limit = limit or state.settings.rate_limit
        window = int(state.settings.rate_window_seconds)
        headers = {
            "ratelimit-limit": str(limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(int(reset)),
            "ratelimit-policy": f"{limit};w={window}",
        }
        if remaining == 0 and state.settings.bluesky_retry_after:
            headers["retry-after"] = str(max(0, int(reset - time.time())))
        return headers

    answers = _kit.Answers(
        rate_limited=rate_limited,
        expired=lambda: _error("ExpiredToken", "Token has expired", 400),
        bad_media=lambda: _error("InvalidRequest", "Could not find blob", 400),
        duplicate=lambda: _error("InternalServerError", "Internal Server Error", 500),
        error=lambda status: _error("InternalServerError", "Internal Server Error", status),
    )

    async def guard(
        request: Request, step: str | None
    ) -> tuple[str, dict[str, str], Fault | None] | Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        if token is None:
            return _error("AuthMissing", "Authentication Required", 401)
        status = state.check_token(PLATFORM, token)
        if status == "expired":
            return _error("ExpiredToken", "Token has expired", 400)
        if status != "ok":
            return _error("InvalidToken", "Token could not be verified", 400)
        did = state.subject_of(token, default=_did("sandbox"))
        limit, remaining, reset, over = state.hit_rate_limit(PLATFORM, did)
        headers = limit_headers(remaining, reset, limit)
        if over:
            return _error("RateLimitExceeded", "Rate Limit Exceeded", 429, headers)
        fault = state.take_fault(PLATFORM, step) if step else None
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        return did, headers, fault

    def session(did: str, issued: dict[str, Any]) -> dict[str, Any]:
        return {
            "did": did,
            "handle": handles.get(did, "sandbox.test"),
            "accessJwt": issued["access_token"],
            "refreshJwt": issued["refresh_token"],
            "active": True,
        }

    def did_document(request: Request, did: str) -> dict[str, Any]:
        """The account's DID document: this sandbox is its PDS."""
        pds = f"{str(request.base_url).rstrip('/')}/{PLATFORM}"
        handle = handles.get(did)
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [f"at://{handle}"] if handle else [],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": pds,
                }
            ],
        }

    @api.post("/com.atproto.server.createSession")
    async def create_session(request: Request) -> Response:
        await _kit.pause(state)
        body = await _kit.body(request)
        identifier, password = str(body.get("identifier") or ""), str(body.get("password") or "")
        known = state.settings.bluesky_app_passwords.get(identifier)
        if (
            not identifier
            or not password
            or password == "wrong-password"
            or (known is not None and password != known)
        ):
            return _error("AuthenticationRequired", "Invalid identifier or password", 401)
        did = identifier if identifier.startswith("did:") else _did(identifier)
        handles.setdefault(did, identifier)
        issued = state.issue_tokens(PLATFORM, did, refresh_expires_in=90 * 86_400)
        answer = session(did, issued)
        if state.settings.bluesky_session_did_doc:
            answer["didDoc"] = did_document(request, did)
        return JSONResponse(answer)

    @api.get("/com.atproto.server.getSession")
    async def get_session(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        did, headers, _fault = allowed
        handle = handles.get(did, "sandbox.test")
        return JSONResponse(
            {"did": did, "handle": handle, "emailConfirmed": True, "active": True},
            headers=headers,
        )

    @api.post("/com.atproto.server.deleteSession")
    async def delete_session(request: Request) -> Response:
        """Ends the refresh token; access tokens live on until their exp (they are stateless)."""
        await _kit.pause(state)
        token = _kit.bearer(request)
        if token is None:
            return _error("AuthMissing", "Authentication Required", 401)
        if token in state.revoked_tokens:
            return _error("ExpiredToken", "Token has been revoked", 400)
        if state.check_token(PLATFORM, token, "refresh") != "ok":
            return _error("InvalidToken", "Token could not be verified", 400)
        state.revoked_tokens.add(token)
        return Response(status_code=200)

    @api.get("/com.atproto.identity.resolveHandle")
    async def resolve_handle(handle: str) -> Response:
        await _kit.pause(state)
        did = next((d for d, h in handles.items() if h == handle), None)
        if did is None and handle in state.settings.bluesky_app_passwords:
            did = _did(handle)
        if did is None:
            return _error("InvalidRequest", "Unable to resolve handle", 400)
        return JSONResponse({"did": did})

    @api.post("/com.atproto.server.refreshSession")
    async def refresh_session(request: Request) -> Response:
        await _kit.pause(state)
        fault = state.take_fault(PLATFORM, "refresh")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        token = _kit.bearer(request)
        if token is None:
            return _error("AuthMissing", "Authentication Required", 401)
        if token in state.revoked_tokens:
            return _error("ExpiredToken", "Token has been revoked", 400)
        status = state.check_token(PLATFORM, token, "refresh")
        if status == "expired":
            return _error("ExpiredToken", "Token has expired", 400)
        issued = state.refresh_grant(PLATFORM, token, rotate=True)
        if issued is None:
            return _error("InvalidToken", "Token could not be verified", 400)
        return JSONResponse(session(issued["subject"], issued))

    @api.post("/com.atproto.repo.uploadBlob")
    async def upload_blob(request: Request) -> Response:
        allowed = await guard(request, "upload")
        if isinstance(allowed, Response):
            return allowed
        _subject, headers, _fault = allowed
        content = await request.body()
        content_type = request.headers.get("content-type", "application/octet-stream")
        if len(content) > 5 * 1024 * 1024:
            return _error("PayloadTooLarge", "request entity too large", 413)
        cid = "bafkrei" + hashlib.sha256(content).hexdigest()[:52]
        state.media[f"bluesky:{cid}"] = _kit.media_entry(cid, content, content_type)
        blob = {
            "$type": "blob",
            "ref": {"$link": cid},
            "mimeType": content_type,
            "size": len(content),
        }
        return JSONResponse({"blob": blob}, headers=headers)

    @api.post("/com.atproto.repo.createRecord")
    async def create_record(request: Request) -> Response:
        body = await _kit.body(request)  # first: a reply takes the faults of step "reply"
        record = body.get("record") or {}
        reply = record.get("reply") if isinstance(record, dict) else None
        allowed = await guard(request, "reply" if reply else "publish")
        if isinstance(allowed, Response):
            return allowed
        did, headers, fault = allowed
        if body.get("repo") not in (did, handles.get(did)):
            return _error("AccountNotFound", "Account not found", 403)
        rkey = str(body.get("rkey") or "") or _now_tid()
        if body.get("collection") != POST or record.get("$type") != POST:
            return _error("InvalidRequest", "Invalid collection", 400)
        if not TID.match(rkey):
            return _error(
                "InvalidRequest", f"Invalid record key for {POST}: Invalid TID string", 400
            )
        if problem := _invalid_post(record, state):
            return _error("InvalidRequest", problem, 400)
        if reply and (problem := _invalid_reply(reply, repos)):
            return _error("InvalidRequest", problem, 400)
        images = ((record.get("embed") or {}).get("images")) or []
        media = []
        for image in images:
            link = ((image.get("image") or {}).get("ref") or {}).get("$link")
            stored = state.media.get(f"bluesky:{link}")
            if stored is None:
                return _error("InvalidRequest", f"Could not find blob: {link}", 400)
            media.append({**stored, "alt": image.get("alt")})
        async with state.lock:
            if (did, rkey) in repos:
                # What the real PDS does today: "There is already a value at key".
                return _error("InternalServerError", "Internal Server Error", 500)
            cid = "bafyrei" + hashlib.sha256(repr(sorted(record.items())).encode()).hexdigest()[:52]
            repos[(did, rkey)] = {"cid": cid, "value": record}
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=rkey,
                    account=did,
                    text=str(record.get("text") or ""),
                    media=media,
                    idempotency_key=rkey,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"uri": _uri(did, rkey), "cid": cid, **_reply_extra(reply)},
                )
            )
        await _kit.hold_after_commit(fault)
        return JSONResponse(
            {
                "uri": _uri(did, rkey),
                "cid": cid,
                "commit": {"cid": cid, "rev": rkey},
                "validationStatus": "valid",
            },
            headers=headers,
        )

    @api.get("/com.atproto.repo.getRecord")
    async def get_record(repo: str, collection: str, rkey: str) -> Response:
        await _kit.pause(state)
        did = (
            repo
            if repo.startswith("did:")
            else next((d for d, h in handles.items() if h == repo), repo)
        )
        stored = repos.get((did, rkey)) if collection == POST else None
        if stored is None:
            return _error("RecordNotFound", f"Could not locate record: {_uri(did, rkey)}", 400)
        return JSONResponse(
            {"uri": _uri(did, rkey), "cid": stored["cid"], "value": stored["value"]}
        )

    outer = APIRouter(prefix=f"/{PLATFORM}")
    outer.include_router(api)

    @outer.get("/{did}")
    async def plc_document(did: str, request: Request) -> Response:
        """What plc.directory answers for a DID (the connector's path when a session has no
        didDoc): accounts that signed in here, or a handle with an app password."""
        await _kit.pause(state)
        known = {_did(handle): handle for handle in state.settings.bluesky_app_passwords}
        if did not in handles and did in known:
            handles[did] = known[did]
        if not did.startswith("did:") or did not in handles:
            return JSONResponse({"message": f"DID not registered: {did}"}, status_code=404)
        return JSONResponse(did_document(request, did))

    return outer


def _invalid_post(record: dict[str, Any], state: SandboxState) -> str | None:
    text = record.get("text")
    if not isinstance(text, str):
        return "Input/record/text must be a string"
    if not record.get("createdAt"):
        return 'Input/record must have the property "createdAt"'
    limit = state.settings.max_text.get(PLATFORM, 300)
    if len(regex.findall(r"\X", text)) > limit:
        return f"Input/record/text must not be longer than {limit} graphemes"
    if len(text.encode()) > MAX_BYTES:
        return f"Input/record/text must not be longer than {MAX_BYTES} characters"
    return None


def _uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


def _invalid_reply(reply: Any, repos: dict[tuple[str, str], dict[str, Any]]) -> str | None:
    """Why a post's `reply` is not two strong refs (uri + cid) to posts of this PDS, if it is
    not: the lexicon's app.bsky.feed.post#replyRef."""
    if not isinstance(reply, dict):
        return "Invalid app.bsky.feed.post record: record/reply must be an object"
    for name in ("root", "parent"):
        ref = reply.get(name)
        if not isinstance(ref, dict) or not ref.get("uri") or not ref.get("cid"):
            return f"Invalid app.bsky.feed.post record: record/reply/{name} must be a strongRef"
        did, _, rkey = str(ref["uri"]).removeprefix("at://").partition(f"/{POST}/")
        stored = repos.get((did, rkey))
        if stored is None or stored["cid"] != ref["cid"]:
            return f"Could not locate record: {ref['uri']} at cid {ref['cid']}"
    return None


def _reply_extra(reply: Any) -> dict[str, str]:
    """What a test needs to walk a thread: the uris a reply points at."""
    if not isinstance(reply, dict):
        return {}
    return {"reply_root": reply["root"]["uri"], "reply_parent": reply["parent"]["uri"]}


def _now_tid() -> str:
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value = int(time.time() * 1_000_000) << 10
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(13)))
