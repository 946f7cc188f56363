"""The one definition of who may do what (core/roles.py), the CSRF token, and passwords."""

from __future__ import annotations

import itertools

import pytest

from postpilot import passwords
from postpilot.core.roles import Permission, Role, allows, api_permission, may_assign, permissions
from postpilot.web import csrf


def test_each_role_has_every_permission_of_the_roles_below_it() -> None:
    order = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]
    for lower, higher in itertools.pairwise(order):
        assert permissions(lower) < permissions(higher)
    assert permissions(Role.VIEWER) == {Permission.READ}
    assert Permission.WRITE_POSTS in permissions(Role.EDITOR)
    assert Permission.MANAGE_KEYS not in permissions(Role.EDITOR)
    assert permissions(Role.OWNER) == set(Permission)


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/api/keys", Permission.READ),
        ("HEAD", "/api/posts", Permission.READ),
        ("POST", "/api/posts", Permission.WRITE_POSTS),
        ("PATCH", "/api/posts/1", Permission.WRITE_POSTS),
        ("POST", "/api/keys", Permission.MANAGE_KEYS),
        ("DELETE", "/api/keys/1", Permission.MANAGE_KEYS),
        ("POST", "/api/accounts/1/check", Permission.MANAGE_ACCOUNTS),
        ("POST", "/api/connect/start", Permission.MANAGE_ACCOUNTS),
        ("PUT", "/api/scheduler", Permission.MANAGE_SCHEDULER),
        ("POST", "/api/keysmith", Permission.WRITE_POSTS),  # a prefix is a whole segment
    ],
)
def test_what_an_api_request_needs(method: str, path: str, needed: Permission) -> None:
    assert api_permission(method, path) == needed


def test_only_owners_touch_owners() -> None:
    assert may_assign(Role.ADMIN, Role.EDITOR, Role.VIEWER)
    assert may_assign(Role.ADMIN, None, Role.ADMIN)
    assert not may_assign(Role.ADMIN, None, Role.OWNER)
    assert not may_assign(Role.ADMIN, Role.OWNER, None)
    assert may_assign(Role.OWNER, Role.OWNER, Role.ADMIN)
    assert not may_assign(Role.EDITOR, Role.VIEWER, Role.EDITOR)
    assert allows(Role.OWNER, Permission.MANAGE_OWNERS)


def test_csrf_token_is_bound_to_its_seed_and_key() -> None:
    token = csrf.token_for("key", "seed")
    assert csrf.valid("key", "seed", token)
    assert not csrf.valid("key", "other-seed", token)
    assert not csrf.valid("other-key", "seed", token)
    assert not csrf.valid("key", None, token)
    assert not csrf.valid("key", "seed", None)
    assert not csrf.valid("key", "seed", "")


def test_passwords_are_argon2_hashes_checked_without_raising() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "wrong")
    assert not passwords.verify("not a hash", "wrong")
    assert passwords.problem("short") == "use at least 10 characters"
    assert passwords.problem("x" * 201) == "use at most 200 characters"
    assert passwords.problem("long enough!") is None
