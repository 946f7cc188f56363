"""LinkedIn Posts API: `POST /rest/posts` (201, URN in x-restli-id), images through
`/rest/images?action=initializeUpload` then a PUT of the bytes, 422 DUPLICATE_POST naming the
existing post, 429 without headers, refresh at `/oauth/v2/accessToken`.

Connect: `GET /oauth/v2/authorization` (the shared consent step), the code grant at
`/oauth/v2/accessToken` (a refresh token per `linkedin_refresh_tokens`), `GET /v2/userinfo`,
`GET /rest/organizationAcls`, `GET /v2/organizations/{id}` (per `connect_organizations`),
`POST /oauth/v2/revoke`."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit, _oauth, _replies
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "linkedin"


def _error(
    status: int, message: str, code: str | None = None, service: int | None = None
) -> Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service:
        body["serviceErrorCode"] = service
    return JSONResponse(body, status_code=status)


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")
    posted: dict[tuple[str, str], str] = {}  # (author, commentary) -> urn

    def expired() -> Response:
        code = state.settings.linkedin_expired_code
        return _error(401, "The token used in the request has expired", code, 65602)

    def duplicate(urn: str = "urn:li:share:7141138937766391808") -> Response:
        return JSONResponse(
            {
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": f"ERROR :: /commentary :: Content is a duplicate of {urn}",
                "errorDetails": {
                    "inputErrors": [
                        {
                            "description": "Duplicate post is detected",
                            "input": {},
                            "code": "DUPLICATE_POST",
                        }
                    ]
                },
                "status": 422,
            },
            status_code=422,
        )

    def throttled(_fault: Fault | None = None) -> Response:
        return _error(
            429,
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        )

    answers = _kit.Answers(
        rate_limited=throttled,
        expired=expired,
        bad_media=lambda: _error(400, "Invalid image: urn:li:image:unknown", "INVALID_IMAGE"),
        duplicate=duplicate,
        error=lambda status: _error(status, "Internal Server Error"),
    )

    async def guard(request: Request, step: str | None) -> tuple[str, Fault | None] | Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        status = state.check_token(PLATFORM, token)
        if status == "expired":
            return expired()
        if token in state.revoked_tokens:
            return _error(
                401,
                "The token used in the request has been revoked by the user",
                "REVOKED_ACCESS_TOKEN",
                65601,
            )
        if status != "ok" or token is None:
            return _error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        subject = state.subject_of(token)
        if state.hit_rate_limit(PLATFORM, subject)[3]:
            return throttled()
        fault = state.take_fault(PLATFORM, step) if step else None
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        return subject, fault

    @api.post("/rest/images")
    async def initialize_upload(request: Request) -> Response:
        allowed = await guard(request, "upload")
        if isinstance(allowed, Response):
            return allowed
        body = await _kit.body(request)
        owner = (body.get("initializeUploadRequest") or {}).get("owner")
        if request.query_params.get("action") != "initializeUpload" or not owner:
            return _error(400, "initializeUploadRequest.owner is required")
        image_id = state.next_id()
        state.media[f"linkedin:urn:li:image:{image_id}"] = {
            "id": image_id,
            "owner": owner,
            "uploaded": False,
        }
        return JSONResponse(
            {
                "value": {
                    "uploadUrlExpiresAt": int((time.time() + 3600) * 1000),
                    "uploadUrl": f"{request.base_url}{PLATFORM}/upload/{image_id}",
                    "image": f"urn:li:image:{image_id}",
                }
            }
        )

    @api.put("/upload/{image_id}")
    async def upload(image_id: str, request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        entry = state.media.get(f"linkedin:urn:li:image:{image_id}")
        content = await request.body()
        content_type = request.headers.get("content-type", "")
        if entry is None:
            return _error(404, "Upload URL not found")
        if not content or not content_type.startswith("image/"):
            return _error(400, "The uploaded file is not a supported image")
        entry.update(_kit.media_entry(image_id, content, content_type), uploaded=True)
        return Response(status_code=201)

    @api.post("/rest/posts")
    async def create_post(request: Request) -> Response:
        allowed = await guard(request, "publish")
        if isinstance(allowed, Response):
            return allowed
        subject, fault = allowed
        if not request.headers.get("linkedin-version"):
            return _error(
                426,
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        body = await _kit.body(request)
        author, commentary = str(body.get("author") or ""), str(body.get("commentary") or "")
        if not author.startswith("urn:li:"):
            return _error(422, "/author :: invalid URN", "UNPROCESSABLE_ENTITY")
        if len(commentary) > state.settings.max_text.get(PLATFORM, 3000):
            return _error(
                422, "/commentary :: length exceeds the maximum allowed", "UNPROCESSABLE_ENTITY"
            )
        media_id = ((body.get("content") or {}).get("media") or {}).get("id")
        media = []
        if media_id:
            entry = state.media.get(f"linkedin:{media_id}")
            if entry is None or not entry.get("uploaded"):
                return _error(400, f"Invalid image: {media_id}", "INVALID_IMAGE")
            media.append(entry)
        async with state.lock:
            if existing := posted.get((author, commentary)):
                return duplicate(existing)
            urn = f"urn:li:share:{state.next_id()}"
            posted[(author, commentary)] = urn
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=urn,
                    account=author,
                    text=commentary,
                    media=media,
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"token_subject": subject},
                )
            )
        await _kit.hold_after_commit(fault)
        return Response(status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    @api.post("/rest/socialActions/{target}/comments")
    async def create_comment(target: str, request: Request) -> Response:
        """A comment on a post: `{"actor", "object", "message": {"text"}}`; 201 with the comment
        and its URN in `x-restli-id` (where the id comes back is unconfirmed: both are set)."""
        allowed = await guard(request, "comment")
        if isinstance(allowed, Response):
            return allowed
        subject, fault = allowed
        body = await _kit.body(request)
        actor, target_urn = str(body.get("actor") or ""), str(body.get("object") or "")
        text = str((body.get("message") or {}).get("text") or "")
        if not actor.startswith("urn:li:") or target_urn != target:
            return _error(422, "/object :: must be the post in the path", "UNPROCESSABLE_ENTITY")
        if not text.strip():
            return _error(422, "/message/text :: is required", "UNPROCESSABLE_ENTITY")
        async with state.lock:
            if _replies.find(state, PLATFORM, target) is None:
                return _error(404, f"Not found: {target}", "NOT_FOUND")
            comment_id = state.next_id()
            urn = f"urn:li:comment:({target},{comment_id})"
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=urn,
                    account=actor,
                    text=text,
                    media=[],
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"comment_on": target, "token_subject": subject},
                )
            )
        await _kit.hold_after_commit(fault)
        comment = {"id": comment_id, "$URN": urn, "actor": actor, "object": target}
        return JSONResponse(comment, status_code=201, headers={"x-restli-id": urn})

    @api.get("/oauth/v2/authorization")
    async def authorization(request: Request) -> Response:
        return _oauth.server(request).authorize(request, PLATFORM)

    @api.post("/oauth/v2/accessToken")
    async def access_token(request: Request) -> Response:
        await _kit.pause(state)
        fault = state.take_fault(PLATFORM, "refresh")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        body = await _kit.body(request)
        if body.get("grant_type") == "authorization_code":
            return redeem(request, body)
        issued = None
        if (
            body.get("grant_type") == "refresh_token"
            and body.get("client_id")
            and body.get("client_secret")
        ):
            issued = state.refresh_grant(
                PLATFORM,
                str(body.get("refresh_token") or ""),
                rotate=state.settings.linkedin_refresh_rotates,
            )
        if issued is None:
            return _oauth_error(
                400,
                "invalid_request",
                "The provided authorization grant or refresh token is invalid, expired or revoked",
            )
        return JSONResponse(
            {
                "access_token": issued["access_token"],
                "expires_in": issued["expires_in"],
                "refresh_token": issued["refresh_token"],
                "refresh_token_expires_in": 31_536_000,
                "scope": "w_member_social",
            }
        )

    def redeem(request: Request, body: dict[str, Any]) -> Response:
        for name in ("code", "redirect_uri", "client_id", "client_secret"):
            if not body.get(name):
                return _oauth_error(
                    400, "invalid_request", f'A required parameter "{name}" is missing'
                )
        oauth = _oauth.server(request)
        if not oauth.client_secret_ok(str(body["client_id"]), str(body["client_secret"])):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        outcome = oauth.redeem(
            PLATFORM,
            str(body["code"]),
            client_id=str(body["client_id"]),
            redirect_uri=str(body["redirect_uri"]),
            code_verifier=str(body.get("code_verifier") or "") or None,
        )
        if isinstance(outcome, _oauth.Refused):
            if outcome.reason in ("invalid_code", "used_code"):
                return _oauth_error(
                    401,
                    "invalid_request",
                    "Unable to retrieve access token: authorization code not found",
                )
            return _oauth_error(
                400,
                "invalid_redirect_uri",
                "Unable to retrieve access token: appid/redirect uri/code verifier does not "
                "match authorization code. Or authorization code expired. Or external member "
                "binding exists",
            )
        declined = state.settings.connect_declined_scopes.get(PLATFORM, [])
        scopes = [s for s in outcome.code.scope.split() if s not in declined]
        partner = state.settings.linkedin_refresh_tokens
        issued = state.issue_tokens(
            PLATFORM,
            outcome.code.subject,
            refresh=partner,
            refresh_expires_in=31_536_000 if partner else None,
        )
        reply: dict[str, Any] = {
            "access_token": issued["access_token"],
            "expires_in": issued["expires_in"],
            "scope": ",".join(scopes),
        }
        if partner:
            reply["refresh_token"] = issued["refresh_token"]
            reply["refresh_token_expires_in"] = 31_536_000
        return JSONResponse(reply)

    @api.get("/v2/userinfo")
    async def userinfo(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        subject = allowed[0]
        return JSONResponse(
            {
                "sub": member_id(subject),
                "name": subject.title(),
                "given_name": subject.title(),
                "family_name": "Sandbox",
                "picture": None,
                "locale": {"country": "US", "language": "en"},
            }
        )

    @api.get("/rest/organizationAcls")
    async def organization_acls(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        subject, params = allowed[0], request.query_params
        if params.get("q") != "roleAssignee":
            return _error(400, "q must be roleAssignee", "ILLEGAL_ARGUMENT")
        elements = [
            {
                "organization": f"urn:li:organization:{org['id']}",
                "role": org.get("role", "ADMINISTRATOR"),
                "state": "APPROVED",
                "roleAssignee": f"urn:li:person:{member_id(subject)}",
            }
            for org in organizations(subject)
            if params.get("role") in (None, org.get("role", "ADMINISTRATOR"))
        ]
        return JSONResponse({"elements": elements, "paging": {"count": 10, "start": 0}})

    @api.get("/v2/organizations/{org_id}")
    async def organization(org_id: str, request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        for org in organizations(allowed[0]):
            if str(org["id"]) == org_id:
                name = str(org.get("name") or f"Organization {org_id}")
                vanity = name.lower().replace(" ", "-")
                return JSONResponse(
                    {"id": int(org_id), "localizedName": name, "vanityName": vanity}
                )
        return _error(
            403, f"Not enough permissions to access organization {org_id}", "ACCESS_DENIED"
        )

    @api.post("/oauth/v2/revoke")
    async def revoke(request: Request) -> Response:
        body = await _kit.body(request)
        if not _oauth.server(request).client_secret_ok(
            str(body.get("client_id") or ""), str(body.get("client_secret") or "")
        ) or not body.get("client_id"):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        token = str(body.get("token") or "")
        state.revoked_tokens.add(token)
        if (known := state.tokens.get(token)) is not None and known.pair:
            state.revoked_tokens.add(known.pair)
        return Response(status_code=200)

    def organizations(subject: str) -> list[dict[str, Any]]:
        """The organizations the member has a role in: the sandbox setting, or one derived
        from the subject where the member is an administrator."""
        configured = state.settings.connect_organizations.get(subject)
        if configured is not None:
            return configured
        org_id = int.from_bytes(hashlib.sha256(f"org:{subject}".encode()).digest()[:4], "big")
        return [{"id": org_id, "name": f"{subject.title()} Org", "role": "ADMINISTRATOR"}]

    return api


def member_id(subject: str) -> str:
    """The member's OpenID `sub` (stable per subject, as LinkedIn's are per member and app)."""
    return hashlib.sha256(f"linkedin:{subject}".encode()).hexdigest()[:10]


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)
