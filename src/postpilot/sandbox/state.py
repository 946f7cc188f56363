"""The sandbox's memory: what was published, scripted faults, rate-limit windows, tokens."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

FaultKind = Literal[
    "rate_limit",  # 429 with the platform's rate-limit signals
    "server_error",  # 500 before anything is stored
    "unavailable",  # 503 before anything is stored
    "timeout",  # hold the request past the client's timeout, store nothing
    "timeout_after_commit",  # store the post, then hold the answer past the client's timeout
    "expired_token",  # the platform's expired/invalid token answer
    "bad_media",  # the platform's invalid-media answer
    "duplicate",  # the platform's duplicate-content answer
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass
class Fault:
    kind: str
    platform: str | None = None  # None: any platform
    remaining: int = 1
    status: int | None = None  # override the HTTP status where it makes sense
    hold_seconds: float = 30.0  # for timeouts
    retry_after_seconds: float = 60.0  # for rate limits
    # Which request takes it: "publish" (the request that creates the post), "upload" (a media
    # upload or a container), "refresh" (a token grant), "reply" (a thread's later part),
    # "comment" (a first comment) or None: the first request that asks.
    step: str | None = None


@dataclass
class Record:
    """One thing the sandbox accepted as published."""

    platform: str
    id: str
    account: str  # who published (token subject, webhook id, chat id...)
    text: str
    media: list[dict[str, Any]]
    idempotency_key: str | None
    received_at: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestLog:
    platform: str
    method: str
    path: str
    status: int
    at: str
    # Requests with the same credentials (Authorization header; the path where there is none)
    # in flight when this one arrived, itself included: what a platform sees of one account's
    # concurrency.
    concurrent: int = 1


DEFAULT_MAX_TEXT = {
    "mastodon": 500,
    "x": 280,
    "bluesky": 300,
    "facebook": 63_206,
    "instagram": 2200,
    "linkedin": 3000,
    "threads": 500,
    "telegram": 4096,
    "discord": 2000,
    "slack": 40_000,
    "matrix": 65_536,
}
ACCESS_TOKEN_TTL = {
    "x": 7200.0,
    "bluesky": 7200.0,
    "instagram": 5_184_000.0,
    "linkedin": 5_184_000.0,
    "threads": 5_184_000.0,
    "slack": 43_200.0,
    "matrix": 3600.0,
}


JWT_PLATFORMS = frozenset({"bluesky"})


def _jwt_shaped(subject: str, expires_at: float | None) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {
        "scope": "com.atproto.access",
        "sub": subject,
        "iat": int(time.time()),
    }
    if expires_at is not None:
        claims["exp"] = int(expires_at)
    return f"{part({'typ': 'at+jwt', 'alg': 'HS256'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


@dataclass
class Token:
    platform: str
    subject: str  # the account it acts for
    kind: str  # "access" or "refresh"
    expires_at: float | None  # epoch seconds; None: never
    pair: str | None = None  # for a refresh token: the access token issued with it


def _telegram_chats() -> dict[str, dict[str, Any]]:
    channel = {"type": "channel", "bot_status": "administrator", "can_post_messages": True}
    return {
        "@sandbox_channel": {"id": -1001000000001, "title": "Sandbox channel", **channel},
        "@sandbox_readers": {
            **channel,
            "id": -1001000000002,
            "title": "Bot only reads here",
            "bot_status": "member",
            "can_post_messages": False,
        },
        "-1001000000003": {
            "id": -1001000000003,
            "type": "supergroup",
            "title": "Sandbox group",
            "bot_status": "member",
        },
    }


def _slack_channels() -> list[dict[str, Any]]:
    return [
        {"id": "C0SANDBOX01", "name": "general", "is_private": False, "is_member": True},
        {"id": "C0SANDBOX02", "name": "announcements", "is_private": False, "is_member": False},
        {"id": "G0SANDBOX03", "name": "team-private", "is_private": True, "is_member": True},
        {"id": "G0SANDBOX04", "name": "not-invited", "is_private": True, "is_member": False},
    ]


def _matrix_rooms() -> dict[str, dict[str, Any]]:
    me = "@sandbox-user:sandbox.test"
    return {
        "!general:sandbox.test": {
            "name": "General",
            "alias": "#general:sandbox.test",
            "joined": [me],
            "users": {me: 0},
            "send_level": 0,
        },
        "!announcements:sandbox.test": {
            "name": "Announcements (admins post)",
            "joined": [me],
            "users": {"@admin:sandbox.test": 100},
            "send_level": 50,
        },
        "!news:sandbox.test": {
            "name": "News",
            "alias": "#news:sandbox.test",
            "joined": [],
            "invited": [me],
            "users": {},
            "send_level": 0,
        },
    }


@dataclass
class Settings:
    latency_ms: float = 0.0  # added to every platform request
    fault_rate: float = 0.0  # random server_error probability for publish requests
    seed: int | None = None
    rate_limit: int = 300  # requests per window per token (Mastodon's default)
    rate_window_seconds: float = 300.0
    # Per-platform [limit, window seconds], overriding the two above.
    rate_limits: dict[str, list[float]] = field(default_factory=dict)
    max_text: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TEXT))
    # Tokens the sandbox never issued are accepted as valid (demos, benchmarks); tokens it
    # issued expire and rotate as the platform's do.
    accept_unknown_tokens: bool = True
    access_token_ttl: dict[str, float] = field(default_factory=lambda: dict(ACCESS_TOKEN_TTL))
    # Polls of a media container (Instagram, Threads) that answer IN_PROGRESS before FINISHED.
    container_polls_in_progress: int = 0
    # --- behaviours platforms.md lists as unconfirmed ---
    x_duplicate_window_seconds: float = 86_400.0  # how long X refuses repeated text
    x_rate_limit_body: str = "v1"  # "v1" {"errors":[{"code":88}]} or "problem" (v2 form)
    x_refresh_rotates: bool = True  # a refresh grant also returns a new refresh token
    # A refresh grant also ends the access token issued with the refresh token it used (Synapse
    # does once the new token is used): a worker still holding it gets the expired answer.
    refresh_revokes_access: bool = False
    # The status of Matrix's answer to a refresh token a rotation already spent (M_UNKNOWN_TOKEN,
    # "refresh token isn't valid anymore"); homeservers differ: 401, 403, 404 were seen.
    matrix_spent_refresh_status: int = 401
    bluesky_retry_after: bool = True  # a 429 also carries Retry-After
    graph_error_status: int = 400  # HTTP status of Graph API errors (Facebook, Instagram...)
    facebook_unreachable_media_code: int = 324  # 100 or 324 for an unreachable `url`
    linkedin_expired_code: str = "EXPIRED_ACCESS_TOKEN"  # the 401 body's code for expiry
    linkedin_refresh_rotates: bool = False  # the RT keeps its 365-day clock
    linkedin_refresh_tokens: bool = True  # the app is a partner: the code grant gives an RT
    telegram_too_long: str = "Bad Request: message is too long"
    discord_max_upload_bytes: int = 10 * 1024 * 1024
    slack_rate_limit_error: str = "ratelimited"  # older docs: "rate_limited"
    # --- connect flows (platforms/_oauth.py) ---
    connect_consent: str = "ask"  # the consent step: "ask" (a page), "approve" or "deny" at once
    connect_subject: str = "sandbox-user"  # who signs in at the consent step
    # Seconds an authorization code stays redeemable (X documents 30 s; others unconfirmed).
    code_ttl_seconds: dict[str, float] = field(default_factory=lambda: {"x": 30.0})
    # Registered OAuth clients: client id -> {"secret": ..., "redirect_uris": [...]}. A client
    # not listed is accepted with any secret and redirect URI (bound at authorize, checked after).
    oauth_clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Scopes the person un-ticks at the consent step, per platform: the token reply (or
    # Meta's /me/permissions) leaves them out, as a partial grant would.
    connect_declined_scopes: dict[str, list[str]] = field(default_factory=dict)
    # Facebook Pages the person manages, per subject: [{"id", "name", "tasks"?, "instagram"?}]
    # ("instagram": the linked professional account's id, or absent). Unset: two Pages derived
    # from the subject, the first with an Instagram account.
    connect_pages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # LinkedIn organizations the member has a role in, per subject: [{"id", "role"}].
    connect_organizations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # --- connect flows of Mastodon, Bluesky, Telegram, Discord, Slack, Matrix ---
    # Mastodon 4.3+ answers /.well-known/oauth-authorization-server and checks PKCE (S256);
    # False: an older server (404 there, code_challenge ignored).
    mastodon_pkce: bool = True
    # App passwords createSession accepts: handle -> password. A handle not listed signs in with
    # any password but "wrong-password" (publisher tests); a listed one only with its own.
    bluesky_app_passwords: dict[str, str] = field(
        default_factory=lambda: {"sandbox-user.test": "sbox-user-test-pass"}
    )
    # createSession answers with the account's didDoc (bsky.social does; the reference PDS in
    # ../shared/peers does not, so a client resolves the DID itself: GET /bluesky/{did}).
    bluesky_session_did_doc: bool = True
    # Chats a bot can be asked about: "@username" or id -> {"id", "type", "title", "bot_status"
    # (creator|administrator|member|restricted|left|kicked), "can_post_messages"}.
    telegram_chats: dict[str, dict[str, Any]] = field(default_factory=_telegram_chats)
    # Slack's token rotation for the app: oauth.v2.access gives a 12 h token and a refresh token.
    slack_token_rotation: bool = False
    # The workspace's channels conversations.list gives: [{"id", "name", "is_private",
    # "is_member"}] (private channels are listed only where the bot is a member).
    slack_channels: list[dict[str, Any]] = field(default_factory=_slack_channels)
    # Matrix accounts password login accepts: localpart -> password.
    matrix_users: dict[str, str] = field(
        default_factory=lambda: {"sandbox-user": "sandbox-user-password"}
    )
    # Rooms: id -> {"name", "alias"?, "joined": [MXIDs], "invited": [MXIDs], "users": {MXID:
    # power level}, "send_level": the level m.room.message needs}.
    matrix_rooms: dict[str, dict[str, Any]] = field(default_factory=_matrix_rooms)


class SandboxState:
    def __init__(self) -> None:
        self.settings = Settings()
        self.records: list[Record] = []
        self.requests: list[RequestLog] = []
        self.in_flight: dict[bytes, int] = {}  # by credentials, as `RequestLog.concurrent`
        self.faults: list[Fault] = []
        self.revoked_tokens: set[str] = set()
        self.tokens: dict[str, Token] = {}
        self.expired_tokens: set[str] = set()  # unknown tokens declared expired by a test
        self.spent_tokens: set[str] = set()  # refresh tokens a rotation used up
        self.media: dict[str, dict[str, Any]] = {}  # platform media id -> attachment
        self.idempotency: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.waiting = 0  # platform requests held in their latency right now (arrived, unanswered)
        self._ids = itertools.count(int(time.time() * 1000) << 4)
        self.rng = random.Random()
        self.lock = asyncio.Lock()
        self.on_reset: list[Callable[[], None]] = []

    def reset(self) -> None:
        """Forget everything, including what platform routers keep (they register a hook)."""
        hooks = self.on_reset
        self.__init__()  # type: ignore[misc]
        self.on_reset = hooks
        for hook in hooks:
            hook()

    def configure(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self.settings, key):
                raise ValueError(f"unknown sandbox setting {key!r}")
            current = getattr(self.settings, key)
            if isinstance(current, dict) and isinstance(value, dict):
                current.update(value)  # per-platform maps: change only the platforms named
            else:
                setattr(self.settings, key, value)
        if "seed" in values:
            self.rng = random.Random(values["seed"])

    def next_id(self) -> str:
        return str(next(self._ids))

    def take_fault(self, platform: str, step: str | None = None) -> Fault | None:
        """The next scripted fault for this platform and step, or a random one at
        `fault_rate` (random faults only hit the publish step)."""
        for fault in self.faults:
            if (
                fault.platform in (None, platform)
                and (fault.step is None or step is None or fault.step == step)
                and fault.remaining > 0
            ):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        if step not in (None, "publish"):
            return None
        if self.settings.fault_rate and self.rng.random() < self.settings.fault_rate:
            return Fault(kind="server_error", platform=platform)
        return None

    def hit_rate_limit(self, platform: str, subject: str) -> tuple[int, int, float, bool]:
        """Count a request in the subject's window: (limit, remaining, reset epoch s, over)."""
        now = time.time()
        limit, window = self.settings.rate_limit, self.settings.rate_window_seconds
        if override := self.settings.rate_limits.get(platform):
            limit, window = int(override[0]), float(override[1])
        start, used = self.windows.get((platform, subject), (now, 0))
        if now - start >= window:
            start, used = now, 0
        used += 1
        self.windows[(platform, subject)] = (start, used)
        reset = start + window
        return limit, max(0, limit - used), reset, used > limit

    def issue_tokens(
        self,
        platform: str,
        subject: str,
        *,
        expires_in: float | None = None,
        refresh: bool = True,
        refresh_expires_in: float | None = None,
    ) -> dict[str, Any]:
        """A new access token (and refresh token) for `subject`, as the platform's grant
        would give them. `expires_in` defaults to the platform's access-token lifetime."""
        ttl = expires_in if expires_in is not None else self.settings.access_token_ttl.get(platform)
        now = time.time()
        access = f"{platform}-at-{secrets.token_urlsafe(12)}"
        if platform in JWT_PLATFORMS:  # a JWT-shaped token whose `exp` a client can read
            access = _jwt_shaped(subject, now + ttl if ttl else None)
        self.tokens[access] = Token(platform, subject, "access", now + ttl if ttl else None)
        issued: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(ttl) if ttl else None,
            "subject": subject,
        }
        if refresh:
            token = f"{platform}-rt-{secrets.token_urlsafe(12)}"
            expires = now + refresh_expires_in if refresh_expires_in else None
            self.tokens[token] = Token(platform, subject, "refresh", expires, pair=access)
            issued["refresh_token"] = token
        return issued

    def check_token(self, platform: str, token: str | None, kind: str = "access") -> str:
        """ "ok", "expired" or "invalid" for a token presented to `platform`."""
        if not token or token in self.revoked_tokens:
            return "invalid"
        if token in self.expired_tokens:
            return "expired"
        known = self.tokens.get(token)
        if known is None:
            return "ok" if self.settings.accept_unknown_tokens else "invalid"
        if known.platform != platform or known.kind != kind:
            return "invalid"
        if known.expires_at is not None and known.expires_at <= time.time():
            return "expired"
        return "ok"

    def refresh_grant(
        self, platform: str, token: str | None, *, rotate: bool
    ) -> dict[str, Any] | None:
        """Trade a refresh token for new tokens; None when it is unknown, expired or revoked.
        With `rotate`, the old refresh token is revoked and a new one issued."""
        if not token or self.check_token(platform, token, "refresh") != "ok":
            return None
        issued = self.issue_tokens(platform, self.subject_of(token), refresh=rotate)
        known = self.tokens[token]
        if self.settings.refresh_revokes_access and known.pair:
            self.revoked_tokens.add(known.pair)
        if rotate:
            self.revoked_tokens.add(token)
            self.spent_tokens.add(token)
        else:
            issued["refresh_token"] = token
            known.pair = issued["access_token"]
        return issued

    def subject_of(self, token: str, default: str = "sandbox-user") -> str:
        known = self.tokens.get(token)
        return known.subject if known else default

    def expire_token(self, token: str) -> None:
        known = self.tokens.get(token)
        if known is None:
            self.expired_tokens.add(token)
        else:
            known.expires_at = time.time() - 1

    def remember(self, record: Record) -> Record:
        self.records.append(record)
        return record

    def log(self, platform: str, method: str, path: str, status: int, concurrent: int = 1) -> None:
        self.requests.append(
            RequestLog(platform, method, path, status, datetime.now(UTC).isoformat(), concurrent)
        )

    def snapshot(self, platform: str | None = None) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.records if platform in (None, r.platform)]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
