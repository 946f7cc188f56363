"""Retry policy: exponential backoff with jitter and a cap on attempts. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0
    jitter: float = 0.2  # +/- this fraction of the delay, so retries of a burst spread out

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("need 0 <= base_delay_seconds <= max_delay_seconds")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def backoff(self, attempts: int, *, rng: random.Random | None = None) -> timedelta:
        """Delay before the next try after `attempts` failed attempts (attempts >= 1)."""
        raw = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, attempts - 1))
        spread = raw * self.jitter
        offset = (rng or random).uniform(-spread, spread) if spread else 0.0
        return timedelta(seconds=max(0.0, raw + offset))

    def may_retry(self, attempts: int) -> bool:
        return attempts < self.max_attempts
