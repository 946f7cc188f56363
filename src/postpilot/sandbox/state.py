"""The sandbox's memory: what was published, scripted faults, rate-limit windows, tokens."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
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


@dataclass
class Settings:
    latency_ms: float = 0.0  # added to every platform request
    fault_rate: float = 0.0  # random server_error probability for publish requests
    seed: int | None = None
    rate_limit: int = 300  # requests per window per token (Mastodon's default)
    rate_window_seconds: float = 300.0
    max_text: dict[str, int] = field(default_factory=lambda: {"mastodon": 500})


class SandboxState:
    def __init__(self) -> None:
        self.settings = Settings()
        self.records: list[Record] = []
        self.requests: list[RequestLog] = []
        self.faults: list[Fault] = []
        self.revoked_tokens: set[str] = set()
        self.media: dict[str, dict[str, Any]] = {}  # platform media id -> attachment
        self.idempotency: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._ids = itertools.count(int(time.time() * 1000) << 4)
        self.rng = random.Random()
        self.lock = asyncio.Lock()

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def configure(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self.settings, key):
                raise ValueError(f"unknown sandbox setting {key!r}")
            setattr(self.settings, key, value)
        if "seed" in values:
            self.rng = random.Random(values["seed"])

    def next_id(self) -> str:
        return str(next(self._ids))

    def take_fault(self, platform: str) -> Fault | None:
        """The next scripted fault for this platform, or a random one at `fault_rate`."""
        for fault in self.faults:
            if fault.platform in (None, platform) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        if self.settings.fault_rate and self.rng.random() < self.settings.fault_rate:
            return Fault(kind="server_error", platform=platform)
        return None

    def hit_rate_limit(self, platform: str, subject: str) -> tuple[int, int, float, bool]:
        """Count a request in the subject's window: (limit, remaining, reset epoch s, over)."""
        now = time.time()
        start, used = self.windows.get((platform, subject), (now, 0))
        if now - start >= self.settings.rate_window_seconds:
            start, used = now, 0
        used += 1
        self.windows[(platform, subject)] = (start, used)
        limit = self.settings.rate_limit
        reset = start + self.settings.rate_window_seconds
        return limit, max(0, limit - used), reset, used > limit

    def remember(self, record: Record) -> Record:
        self.records.append(record)
        return record

    def log(self, platform: str, method: str, path: str, status: int) -> None:
        self.requests.append(
            RequestLog(platform, method, path, status, datetime.now(UTC).isoformat())
        )

    def snapshot(self, platform: str | None = None) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.records if platform in (None, r.platform)]


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
