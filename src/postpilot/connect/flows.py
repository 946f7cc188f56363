"""The pure parts of a connect flow: its state and PKCE values (from authlib), how long it stays
open, the one callback URL, the redirect to a success URL, and what a person pastes back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from postpilot.connect.base import Target
from postpilot.core.timezones import as_utc

# Long enough to read a consent page and sign in; short enough that a leaked link is soon dead.
FLOW_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/api/connect/callback"
STATE_LENGTH = 48
VERIFIER_LENGTH = 64  # RFC 7636: 43 to 128 characters


def new_state() -> str:
    return generate_token(STATE_LENGTH)


def new_verifier() -> str:
    return generate_token(VERIFIER_LENGTH)


def challenge(verifier: str) -> str:
    made: str = create_s256_code_challenge(verifier)  # type: ignore[no-untyped-call]
    return made


def expires_at(now: datetime) -> datetime:
    return now + FLOW_TTL


def is_open(*, expires: datetime, used: datetime | None, now: datetime) -> bool:
    return used is None and as_utc(expires) > now


def callback_url(public_base_url: str) -> str:
    """The one redirect URI of every platform: the state says which flow it ends."""
    return public_base_url.rstrip("/") + CALLBACK_PATH


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` added to whatever query it already has."""
    parts = urlsplit(url)
    query = "&".join(filter(None, (parts.query, urlencode(params))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class Pasted:
    """What a person pasted back from the platform's redirect: a whole URL or a bare code."""

    state: str | None
    code: str | None
    error: str | None
    error_description: str | None


def read_pasted(text: str) -> Pasted:
    text = text.strip()
    if "://" not in text and "?" not in text and "=" not in text:
        return Pasted(state=None, code=text or None, error=None, error_description=None)
    query = parse_qs(urlsplit(text).query or text.lstrip("?"))

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    return Pasted(one("state"), one("code"), one("error"), one("error_description"))


def targets_to_json(targets: list[Target]) -> dict[str, Any]:
    return {
        "targets": [
            {**asdict(t), "expires_at": t.expires_at.isoformat() if t.expires_at else None}
            for t in targets
        ]
    }


def targets_from_json(data: dict[str, Any]) -> list[Target]:
    return [
        Target(
            **{
                **item,
                "expires_at": datetime.fromisoformat(item["expires_at"])
                if item.get("expires_at")
                else None,
            }
        )
        for item in data.get("targets", [])
    ]
