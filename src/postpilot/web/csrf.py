"""CSRF tokens: a synchronizer token that is never stored.

The token is an HMAC (keyed with SECRET_KEY) of a secret the browser holds in an HttpOnly
cookie: the session's secret once signed in, a random pre-session cookie on the sign-in,
first-run and invitation forms. A page of another site can neither read the cookie nor compute
the token, so every state-changing request must carry it: the `csrf_token` form field, or the
`X-CSRF-Token` header (htmx sends it from the page's `hx-headers`; scripts calling the API with
a session cookie do the same)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
PRE_SESSION_COOKIE = "pp_presession"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_seed() -> str:
    return secrets.token_urlsafe(32)


def token_for(secret_key: str, seed: str) -> str:
    key = hashlib.sha256(b"postpilot-csrf:" + secret_key.encode()).digest()
    return hmac.new(key, seed.encode(), hashlib.sha256).hexdigest()


def valid(secret_key: str, seed: str | None, given: str | None) -> bool:
    if not seed or not given:
        return False
    return hmac.compare_digest(token_for(secret_key, seed), given)
