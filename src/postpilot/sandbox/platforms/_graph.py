"""Graph API behaviour shared by the Facebook, Instagram and Threads routers: tokens in
`access_token` or Bearer, the error envelope, usage headers, throttling codes and containers."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit
from postpilot.sandbox.state import Fault, SandboxState


def error(
    state: SandboxState,
    message: str,
    code: int,
    subcode: int | None = None,
    *,
    status: int | None = None,
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": "A" + str(int(time.time() * 1000)),
    }
    if subcode is not None:
        body["error_subcode"] = subcode
    return JSONResponse(
        {"error": body}, status_code=status or state.settings.graph_error_status, headers=headers
    )


def expired(state: SandboxState) -> Response:
    return error(
        state,
        "Error validating access token: Session has expired on Friday, 01-Jan-26 00:00:00 PST.",
        190,
        463,
    )


def revoked(state: SandboxState) -> Response:
    """A token whose user removed the app (or that the app revoked)."""
    return error(
        state, "Error validating access token: The user has not authorized application.", 190, 458
    )


def numeric_id(*parts: str) -> str:
    """A Graph-style numeric id, stable for what it names (a subject's user, Page, account)."""
    return str(int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:7], "big"))


@dataclass
class Graph:
    """One Graph-style platform inside the sandbox."""

    state: SandboxState
    platform: str
    usage_type: str  # "pages", "instagram", "threads"
    throttle_code: int  # 80001 (Pages), 80002 (Instagram), 4 (Threads)
    bad_media: Callable[[], Response]
    duplicate: Callable[[], Response]

    @property
    def answers(self) -> _kit.Answers:
        return _kit.Answers(
            rate_limited=self.throttled,
            expired=lambda: expired(self.state),
            bad_media=self.bad_media,
            duplicate=self.duplicate,
            error=lambda status: error(
                self.state,
                "An unexpected error has occurred. Please retry your request later.",
                2,
                status=status,
                transient=True,
            ),
        )

    def usage_headers(
        self, subject: str, remaining: int, limit: int, reset: float
    ) -> dict[str, str]:
        used = 100 if remaining <= 0 else int(100 * (limit - remaining) / max(limit, 1))
        minutes = max(1, int((reset - time.time()) / 60) + 1) if remaining <= 0 else 0
        entry = {
            "type": self.usage_type,
            "call_count": used,
            "total_cputime": min(used, 10),
            "total_time": min(used, 10),
            "estimated_time_to_regain_access": minutes,
        }
        app = {"call_count": min(used, 5), "total_time": 1, "total_cputime": 1}
        return {
            "x-business-use-case-usage": json.dumps({subject: [entry]}),
            "x-app-usage": json.dumps(app),
        }

    def throttled(
        self, fault: Fault | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        if fault is not None:
            reset = time.time() + fault.retry_after_seconds
            headers = self.usage_headers("sandbox", 0, 1, reset)
        return error(
            self.state,
            f"(#{self.throttle_code}) There have been too many calls. Wait a bit and try again.",
            self.throttle_code,
            headers=headers,
        )

    def token_of(self, request: Request, values: dict[str, Any]) -> str | None:
        return _kit.bearer(request) or (str(values.get("access_token") or "") or None)

    async def guard(
        self, request: Request, step: str | None
    ) -> tuple[str, dict[str, Any], dict[str, str], Fault | None] | Response:
        """Latency, the token, the usage window and scripted faults; returns the subject, the
        request's values, the usage headers and the fault to apply after storing."""
        await _kit.pause(self.state)
        values = await _kit.body(request)
        token = self.token_of(request, values)
        status = self.state.check_token(self.platform, token)
        if status == "expired":
            return expired(self.state)
        if token in self.state.revoked_tokens:
            return revoked(self.state)
        if status != "ok":
            return error(self.state, "Invalid OAuth access token - Cannot parse access token", 190)
        assert token is not None
        subject = self.state.subject_of(token)
        limit, remaining, reset, over = self.state.hit_rate_limit(self.platform, subject)
        headers = self.usage_headers(subject, remaining, limit, reset)
        if over:
            return self.throttled(headers=headers)
        fault = self.state.take_fault(self.platform, step) if step else None
        if (answer := await _kit.answer_fault(fault, self.answers)) is not None:
            return answer
        return subject, values, headers, fault

    def refresh(self, request: Request, grant: str) -> Response:
        """`GET /refresh_access_token?grant_type=<grant>&access_token=<long-lived token>`."""
        params = request.query_params
        token = params.get("access_token")
        if params.get("grant_type") != grant:
            return error(self.state, f"grant_type must be {grant}", 100)
        status = self.state.check_token(self.platform, token)
        if status == "expired":
            return expired(self.state)
        if status != "ok" or token is None:
            return error(self.state, "Invalid OAuth access token - Cannot parse access token", 190)
        issued = self.state.issue_tokens(self.platform, self.state.subject_of(token), refresh=False)
        return JSONResponse(
            {
                "access_token": issued["access_token"],
                "token_type": "bearer",
                "expires_in": issued["expires_in"],
            }
        )
