"""The figures of one pass, computed from its report: what the monitor stores per pass and what
every windowed summary is built from. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from postpilot.core import figures
from postpilot.core.timezones import as_utc

if TYPE_CHECKING:
    from postpilot.scheduler.summary import PassReport


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(value, 3) for value in values]


@dataclass(frozen=True, slots=True)
class PassFigures:
    """One stored row of `pass_metrics`."""

    pass_id: str
    scheduler: str
    started_at: datetime
    duration_ms: float
    batch_limit: int
    concurrency: int
    claimed: int = 0
    published: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    unknown: int = 0
    released: int = 0
    lost_lease: int = 0
    processing_count: int = 0
    processing_total_ms: float = 0.0
    processing_p50_ms: float | None = None
    processing_p95_ms: float | None = None
    processing_p99_ms: float | None = None
    processing_samples: list[float] = field(default_factory=list)
    db_statements: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_phase: str | None = None  # figures.CachePhase; None when stored before it was known
    peak_db_connections: int = 0
    max_db_connections: int = 0
    lateness_count: int = 0
    lateness_p50_ms: float | None = None
    lateness_p99_ms: float | None = None
    lateness_samples: list[float] = field(default_factory=list)

    @classmethod
    def from_report(
        cls,
        report: PassReport,
        *,
        max_connections: int,
        cache_phase: figures.CachePhase | None = None,
    ) -> PassFigures:
        processing, lateness = _rounded(report.processing_ms), _rounded(report.lateness_ms)
        return cls(
            pass_id=report.pass_id,
            scheduler=report.scheduler,
            started_at=report.started_at,
            duration_ms=round(report.duration_ms, 3),
            batch_limit=report.limit,
            concurrency=report.concurrency,
            claimed=report.claimed,
            published=report.published,
            failed=report.failed,
            retried=report.retried,
            rate_limited=report.rate_limited,
            unknown=report.unknown,
            released=report.released,
            lost_lease=report.lost_lease,
            processing_count=len(processing),
            processing_total_ms=round(sum(processing), 3),
            processing_p50_ms=figures.percentile(processing, 50),
            processing_p95_ms=figures.percentile(processing, 95),
            processing_p99_ms=figures.percentile(processing, 99),
            processing_samples=processing,
            db_statements=report.db_statements,
            cache_hits=report.cache_hits,
            cache_misses=report.cache_misses,
            cache_phase=cache_phase,
            peak_db_connections=report.peak_db_connections,
            max_db_connections=max_connections,
            lateness_count=len(lateness),
            lateness_p50_ms=figures.percentile(lateness, 50),
            lateness_p99_ms=figures.percentile(lateness, 99),
            lateness_samples=lateness,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PassFigures:
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["started_at"] = as_utc(values["started_at"])
        values["processing_samples"] = list(values.get("processing_samples") or [])
        values["lateness_samples"] = list(values.get("lateness_samples") or [])
        return cls(**values)

    @property
    def outcomes(self) -> int:
        return figures.outcomes(self)

    @property
    def errors(self) -> int:
        return figures.errors(self)

    def row(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """For the runs API: every figure except the raw samples."""
        samples = ("processing_samples", "lateness_samples")
        data = {k: v for k, v in self.row().items() if k not in samples}
        data["started_at"] = self.started_at.isoformat()
        data["db_connections_ratio"] = figures.ratio(
            self.peak_db_connections, self.max_db_connections
        )
        data["cache_hit_rate"] = figures.hit_rate(self.cache_hits, self.cache_misses)
        return data
