"""Sandbox controls for connect flows: what a person does at the platform outside our flow,
such as removing our app from their account settings ("revoke app"), so tests can check that
verify and publish calls then get the platform's revoked-token answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from postpilot.sandbox.state import SandboxState


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix="/_sandbox/connect")

    @api.post("/revoke_app")
    async def revoke_app(values: dict[str, Any]) -> dict[str, Any]:
        """Every token the sandbox issued on `platform` for `subject` stops working."""
        platform, subject = values.get("platform"), values.get("subject")
        if not isinstance(platform, str) or not isinstance(subject, str):
            raise HTTPException(422, "platform and subject (strings) are needed")
        revoked = [
            token
            for token, known in state.tokens.items()
            if known.platform == platform and known.subject == subject
        ]
        state.revoked_tokens.update(revoked)
        return {"status": "revoked", "tokens": len(revoked)}

    return api
