"""Who may do what in a workspace: the one definition the API and the web pages both ask.

A role is a set of permissions; each role has every permission of the roles below it:
viewer reads, editor writes posts, admin manages accounts, keys, members and the scheduler,
owner may also make and unmake owners. API keys act as admins (ROLE_OF_API_KEYS)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"


class Permission(StrEnum):
    READ = "read"
    WRITE_POSTS = "write_posts"
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_KEYS = "manage_keys"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_SCHEDULER = "manage_scheduler"
    MANAGE_OWNERS = "manage_owners"


_ORDER = (Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER)
_LEAST_ROLE: dict[Permission, Role] = {
    Permission.READ: Role.VIEWER,
    Permission.WRITE_POSTS: Role.EDITOR,
    Permission.MANAGE_ACCOUNTS: Role.ADMIN,
    Permission.MANAGE_KEYS: Role.ADMIN,
    Permission.MANAGE_MEMBERS: Role.ADMIN,
    Permission.MANAGE_SCHEDULER: Role.ADMIN,
    Permission.MANAGE_OWNERS: Role.OWNER,
}
ROLE_OF_API_KEYS = Role.ADMIN

# The API's paths by what changing them needs; reading any of them needs READ. Longest first.
_API_WRITES: tuple[tuple[str, Permission], ...] = (
    ("/api/keys", Permission.MANAGE_KEYS),
    ("/api/accounts", Permission.MANAGE_ACCOUNTS),
    ("/api/connect", Permission.MANAGE_ACCOUNTS),
    ("/api/scheduler", Permission.MANAGE_SCHEDULER),
    ("/api/webhooks", Permission.MANAGE_ACCOUNTS),
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def least_role(permission: Permission) -> Role:
    return _LEAST_ROLE[permission]


def allows(role: Role, permission: Permission) -> bool:
    return _ORDER.index(role) >= _ORDER.index(_LEAST_ROLE[permission])


def permissions(role: Role) -> frozenset[Permission]:
    return frozenset(p for p in Permission if allows(role, p))


def api_permission(method: str, path: str) -> Permission:
    """What a request to the API needs: reads need READ; a change needs what its resource
    names (keys, accounts, scheduler), anything else (posts, deliveries, media) WRITE_POSTS."""
    if method.upper() in _SAFE_METHODS:
        return Permission.READ
    if path.startswith("/api/v1/"):  # a version names the same resource as its /api alias
        path = "/api/" + path.removeprefix("/api/v1/")
    for prefix, permission in _API_WRITES:
        if path == prefix or path.startswith(prefix + "/"):
            return permission
    return Permission.WRITE_POSTS


def may_assign(actor: Role, current: Role | None, wanted: Role | None) -> bool:
    """May `actor` change a membership from `current` to `wanted` (None: absent)? Only owners
    touch an owner's membership or make an owner; others need MANAGE_MEMBERS."""
    if not allows(actor, Permission.MANAGE_MEMBERS):
        return False
    if Role.OWNER in (current, wanted):
        return allows(actor, Permission.MANAGE_OWNERS)
    return True
