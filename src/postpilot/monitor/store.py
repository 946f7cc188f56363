"""The monitor's queries: pass figures in and out (with their buckets' rollups), and alert
states. What the alert rules read from the scheduling tables is queried by the store
(`work.overdue_deliveries`, `accounts.accounts_needing_reconnect`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.states import AlertStatus
from postpilot.core.timezones import as_utc
from postpilot.monitor import rollups
from postpilot.monitor.figures import PassFigures
from postpilot.store.tables import MonitorAlert, MonitorRollup, PassMetric, table_of

pass_metrics = table_of(PassMetric)
monitor_rollups = table_of(MonitorRollup)
alerts = table_of(MonitorAlert)
FIRING, RESOLVED = AlertStatus.FIRING.value, AlertStatus.RESOLVED.value


async def insert_pass(conn: AsyncConnection, figures: PassFigures) -> None:
    """Store a pass and add it to its buckets' rollups, in the caller's transaction."""
    await conn.execute(insert(pass_metrics).values(**figures.row()))
    parts = [rollups.Rollup.of_pass(figures, size) for size in rollups.SIZES]
    await conn.execute(_add_to_rollups(conn.dialect.name, parts))


def _add_to_rollups(dialect: str, parts: list[rollups.Rollup]) -> Any:
    """One statement: insert each bucket's row, or add to the row already there by the rules
    of `rollups.Rollup.merge` (concurrent passes of one bucket serialise on its row)."""
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(monitor_rollups)
    stmt = stmt.values([part.row() for part in parts])
    old, new = monitor_rollups.c, stmt.excluded
    merged: dict[str, Any] = {name: old[name] + new[name] for name in rollups.SUMS}
    # case() rather than greatest()/max(), which differ between the databases.
    merged |= {
        name: case((new[name] > old[name], new[name]), else_=old[name]) for name in rollups.MAXIMA
    }
    merged |= {
        name: case((new[name] < old[name], new[name]), else_=old[name]) for name in rollups.MINIMA
    }
    higher = (new.peak_ratio > old.peak_ratio) | (
        (new.peak_ratio == old.peak_ratio) & (new.peak_db_connections > old.peak_db_connections)
    )
    merged |= {name: case((higher, new[name]), else_=old[name]) for name in rollups.PEAK}
    merged |= {name: _added_histograms(dialect, name) for name in rollups.HISTOGRAMS}
    return stmt.on_conflict_do_update(
        index_elements=[old[name] for name in rollups.KEY], set_=merged
    )


def _added_histograms(dialect: str, column: str) -> ColumnElement[Any]:
    """The stored histogram (a JSON object of bin -> count) plus the new one, bin by bin."""
    table = monitor_rollups.name
    if dialect == "postgresql":
        return literal_column(
            "(SELECT coalesce(json_object_agg(key, total), '{}'::json) FROM ("
            "SELECT key, sum(value::bigint) AS total FROM ("
            f"SELECT key, value FROM json_each_text({table}.{column}) UNION ALL "
            f"SELECT key, value FROM json_each_text(excluded.{column})) AS parts "
            "GROUP BY key) AS sums)"
        )
    return literal_column(
        "(SELECT json_group_object(key, total) FROM ("
        "SELECT key, sum(value) AS total FROM ("
        f"SELECT key, value FROM json_each({table}.{column}) UNION ALL "
        f"SELECT key, value FROM json_each(excluded.{column})) GROUP BY key))"
    )


async def rollups_since(
    conn: AsyncConnection, size: timedelta, since: datetime
) -> list[rollups.Rollup]:
    """Every scheduler's rollups of `size` from the bucket starting at `since` on."""
    c = monitor_rollups.c
    rows = await conn.execute(
        select(monitor_rollups)
        .where(c.bucket_seconds == int(size.total_seconds()), c.bucket_start >= since)
        .order_by(c.bucket_start, c.scheduler)
    )
    return [rollups.Rollup.from_row(dict(row._mapping)) for row in rows]


async def passes_since(
    conn: AsyncConnection, since: datetime, *, scheduler: str | None = None
) -> list[PassFigures]:
    query = select(pass_metrics).where(pass_metrics.c.started_at >= since)
    if scheduler:
        query = query.where(pass_metrics.c.scheduler == scheduler)
    rows = await conn.execute(query.order_by(pass_metrics.c.started_at))
    return [PassFigures.from_row(dict(row._mapping)) for row in rows]


async def recent_passes(
    conn: AsyncConnection, *, limit: int, scheduler: str | None = None
) -> list[PassFigures]:
    query = select(pass_metrics)
    if scheduler:
        query = query.where(pass_metrics.c.scheduler == scheduler)
    rows = await conn.execute(
        query.order_by(pass_metrics.c.started_at.desc(), pass_metrics.c.pass_id).limit(limit)
    )
    return [PassFigures.from_row(dict(row._mapping)) for row in rows]


async def prune(conn: AsyncConnection, *, before: datetime, rollups_before: datetime) -> int:
    """Forget pass figures and resolved alerts older than `before`, and rollups of buckets
    that began before `rollups_before` (kept longer: they are small)."""
    removed = await conn.execute(delete(pass_metrics).where(pass_metrics.c.started_at < before))
    resolved = await conn.execute(
        delete(alerts).where(alerts.c.status == RESOLVED, alerts.c.resolved_at < before)
    )
    summed = await conn.execute(
        delete(monitor_rollups).where(monitor_rollups.c.bucket_start < rollups_before)
    )
    return int(removed.rowcount) + int(resolved.rowcount) + int(summed.rowcount)


# --- alerts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    rule: str
    subject: str
    status: str
    severity: str
    value: float | None
    threshold: float | None
    message: str
    details: dict[str, Any]
    fired_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)

    @classmethod
    def from_row(cls, row: Any) -> AlertRecord:
        data = dict(row._mapping)
        for name in ("fired_at", "last_seen_at", "resolved_at"):
            if data[name] is not None:
                data[name] = as_utc(data[name])
        data["details"] = dict(data["details"] or {})
        return cls(**data)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "subject": self.subject,
            "status": self.status,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "details": self.details,
            "fired_at": self.fired_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


async def firing_alerts(conn: AsyncConnection) -> list[AlertRecord]:
    rows = await conn.execute(
        select(alerts).where(alerts.c.status == FIRING).order_by(alerts.c.fired_at, alerts.c.id)
    )
    return [AlertRecord.from_row(row) for row in rows]


async def recent_alerts(
    conn: AsyncConnection, *, limit: int, status: str | None = None
) -> list[AlertRecord]:
    query = select(alerts)
    if status:
        query = query.where(alerts.c.status == status)
    rows = await conn.execute(
        query.order_by(alerts.c.fired_at.desc(), alerts.c.id.desc()).limit(limit)
    )
    return [AlertRecord.from_row(row) for row in rows]


async def fire(
    conn: AsyncConnection,
    *,
    rule: str,
    subject: str,
    severity: str,
    value: float | None,
    threshold: float | None,
    message: str,
    details: dict[str, Any],
    now: datetime,
) -> AlertRecord | None:
    """Open a firing alert; None when one is already firing for (rule, subject) — another
    process got there first, and it is the one that notifies."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(alerts)
        .values(
            rule=rule,
            subject=subject,
            status=FIRING,
            severity=severity,
            value=value,
            threshold=threshold,
            message=message,
            details=details,
            fired_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_nothing()
        .returning(*alerts.c)
    )
    row = (await conn.execute(stmt)).first()
    return AlertRecord.from_row(row) if row is not None else None


async def resolve(conn: AsyncConnection, alert_id: int, *, now: datetime) -> AlertRecord | None:
    """Resolve a firing alert; None when it was already resolved (by another process)."""
    row = (
        await conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.status == FIRING)
            .values(status=RESOLVED, resolved_at=now, last_seen_at=now)
            .returning(*alerts.c)
        )
    ).first()
    return AlertRecord.from_row(row) if row is not None else None


async def still_firing(
    conn: AsyncConnection,
    alert_id: int,
    *,
    value: float | None,
    message: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.status == FIRING)
        .values(value=value, message=message, details=details, last_seen_at=now)
    )
