"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 200  # argon2 takes any length; a bound keeps one sign-in from costing much

_hasher = PasswordHasher()


def problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with other parameters than today's: hash the password again at sign-in."""
    return _hasher.check_needs_rehash(password_hash)


def new_password() -> str:
    """A random password for someone to sign in with and change (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


async def hash_in_thread(password: str) -> str:
    """`hash_password` off the event loop: argon2 takes tens of milliseconds of CPU on purpose."""
    return await asyncio.to_thread(hash_password, password)


async def verify_in_thread(password_hash: str | None, password: str) -> bool:
    """None (no user has the email) is checked against a dummy hash and is never right: an unknown
    email costs as much as a known one, so the answer's timing tells nothing."""
    if password_hash is None:
        await asyncio.to_thread(verify, _dummy_hash(), password)
        return False
    return await asyncio.to_thread(verify, password_hash, password)


@cache
def _dummy_hash() -> str:
    # Made on first use: every process imports this module, few sign anyone in.
    return hash_password("not-a-password-of-anyone")
