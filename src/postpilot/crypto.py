"""Secrets at rest: account credentials encrypted with Fernet, API keys stored as hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from postpilot.errors import PostpilotError

API_KEY_PREFIX = "pp_"


class CredentialsError(PostpilotError):
    """Stored credentials could not be decrypted: SECRET_KEY changed without keeping the old key."""


class CredentialCipher:
    """Encrypts credential dicts. SECRET_KEY may list several keys, comma-separated: the first
    encrypts, all decrypt, so a key can be rotated without losing stored accounts."""

    def __init__(self, secret_key: str) -> None:
        keys = [part.strip() for part in secret_key.split(",") if part.strip()]
        if not keys:
            raise ValueError("SECRET_KEY is empty")
        self._fernet = MultiFernet([Fernet(_derive_fernet_key(key)) for key in keys])

    def encrypt(self, credentials: dict[str, Any]) -> str:
        payload = json.dumps(credentials, sort_keys=True, separators=(",", ":")).encode()
        return self._fernet.encrypt(payload).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise CredentialsError(CredentialsError.__doc__) from exc
        if not isinstance(data, dict):
            raise CredentialsError("stored credentials are not an object")
        return data


def _derive_fernet_key(secret: str) -> bytes:
    digest = hashlib.sha256(b"postpilot-credentials:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # API keys are 256 random bits: a fast hash is enough; no salt or KDF needed.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_lookup_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + 8]


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _secret_keys(secret_key: str) -> list[str]:
    return [part.strip() for part in secret_key.split(",") if part.strip()]


def _signature(key: str, purpose: str, message: str) -> str:
    derived = hashlib.sha256(f"postpilot-{purpose}:".encode() + key.encode()).digest()
    digest = hmac.new(derived, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret_key: str, purpose: str, message: str) -> str:
    """A URL-safe HMAC-SHA256 of `message`, keyed with SECRET_KEY's first key for one purpose
    (a signature for one purpose is worthless for another)."""
    keys = _secret_keys(secret_key)
    if not keys:
        raise ValueError("SECRET_KEY is empty")
    return _signature(keys[0], purpose, message)


def signed(secret_key: str, purpose: str, message: str, signature: str) -> bool:
    """Whether `signature` is `sign`'s for `message` under any of SECRET_KEY's keys, so links
    signed before a key rotation stay valid while the old key is listed."""
    return any(
        same_secret(_signature(key, purpose, message), signature)
        for key in _secret_keys(secret_key)
    )
