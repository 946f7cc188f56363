"""The monitor's queries: pass figures in and out, and alert states. What the alert rules read
from the scheduling tables is queried by the store (`work.overdue_deliveries`,
`accounts.accounts_needing_reconnect`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.states import AlertStatus
from postpilot.core.timezones import as_utc
from postpilot.monitor.figures import PassFigures
from postpilot.store.tables import MonitorAlert, PassMetric, table_of

pass_metrics = table_of(PassMetric)
alerts = table_of(MonitorAlert)
FIRING, RESOLVED = AlertStatus.FIRING.value, AlertStatus.RESOLVED.value


async def insert_pass(conn: AsyncConnection, figures: PassFigures) -> None:
    await conn.execute(insert(pass_metrics).values(**figures.row()))


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


async def prune(conn: AsyncConnection, *, before: datetime) -> int:
    """Forget pass figures and resolved alerts older than `before`."""
    removed = await conn.execute(delete(pass_metrics).where(pass_metrics.c.started_at < before))
    resolved = await conn.execute(
        delete(alerts).where(alerts.c.status == RESOLVED, alerts.c.resolved_at < before)
    )
    return int(removed.rowcount) + int(resolved.rowcount)


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
