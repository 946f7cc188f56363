"""The performance dashboard: the monitor's series as charts (reference against optimized),
the comparison table, alert history, and the active scheduler with its knobs; admins switch,
tune and roll back, each after a confirmation step, recorded in the scheduler's audit trail
with the signed-in user as the actor.

The figures are the service's (every workspace's passes share the scheduler): any member reads
them, as any member of the service would see a pass run late. The live part is polled by htmx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core import knobs
from postpilot.core.durations import parse_duration
from postpilot.core.roles import Permission, allows
from postpilot.errors import InvalidValue
from postpilot.monitor import rollups, summary
from postpilot.monitor import store as monitor_store
from postpilot.scheduler import control
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth, charts
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/dashboard", include_in_schema=False)

WINDOWS: tuple[str, ...] = get_args(summary.Window)
# A window's buckets are 1 min, 15 min and 1 h: polling much faster than a bucket fills
# redraws the same chart.
POLL_SECONDS = {"1h": 5, "24h": 30, "7d": 120}
ALERTS_SHOWN = 20
Window = Annotated[str, Query(pattern="^(1h|24h|7d)$")]


Figures = tuple[dict[str, summary.SchedulerSummary], dict[str, list[dict[str, Any]]]]


def rollup_start(window: str, now: datetime) -> datetime:
    """Where a long window's buckets begin: as many whole buckets as the window holds, the
    last one being the bucket `now` is in."""
    bucket = summary.BUCKETS[window]
    count = int(summary.WINDOWS[window] / bucket)
    return rollups.bucket_start(now, bucket) - bucket * (count - 1)


async def window_figures(conn: AsyncConnection, window: str, now: datetime) -> Figures:
    """Each scheduler's summary and chart points over `window`. The last hour is read from
    its passes (exact percentiles); longer windows from the rollups of their buckets (a few
    hundred rows whatever the number of passes; percentiles within a histogram bin)."""
    bucket = summary.BUCKETS[window]
    if bucket not in rollups.SIZES:
        start = now - summary.WINDOWS[window]
        passes = await monitor_store.passes_since(conn, start)
        return (
            summary.by_scheduler(passes, window=summary.WINDOWS[window]),
            summary.series(passes, start=start, end=now, bucket=bucket),
        )
    start = rollup_start(window, now)
    found = await monitor_store.rollups_since(conn, bucket, start)
    return (
        rollups.by_scheduler(found, window=now - start),
        rollups.series(found, start=start, end=now, bucket=bucket),
    )


async def _live(request: Request, window: str) -> dict[str, Any]:
    """What the poll refreshes: charts, comparison, alerts, the scheduler's state."""
    runtime = auth.runtime_of(request)
    now = runtime.now()
    async with runtime.db.engine.connect() as conn:
        per_scheduler, points = await window_figures(conn, window, now)
        recent = await monitor_store.recent_alerts(conn, limit=ALERTS_SHOWN)
    found = await control.status(runtime.db, runtime.settings, now=now)
    return {
        "window": window,
        "windows": WINDOWS,
        "charts": charts.charts(points),
        "schedulers": per_scheduler,
        "comparison": summary.compare(
            per_scheduler[knobs.SchedulerKind.REFERENCE],
            per_scheduler[knobs.SchedulerKind.OPTIMIZED],
        ),
        "alerts": recent,
        "scheduler": found,
        "monitoring": runtime.settings.ENABLE_PERFORMANCE_MONITORING,
        "poll_seconds": POLL_SECONDS[window],
        "updated": now,
    }


def _controls(signed: SignedIn, found: control.SchedulerStatus) -> dict[str, Any]:
    return {
        "can_manage": allows(signed.role, Permission.MANAGE_SCHEDULER),
        "kinds": [k.value for k in knobs.SchedulerKind],
        "knobs": {k.name: k for k in knobs.TUNABLE},
        "rollback": rollback_of(found.changes),
    }


@router.get("")
async def dashboard_page(request: Request, signed: Member, window: Window = "1h") -> Response:
    live = await _live(request, window)
    return page(
        request,
        "dashboard.html",
        signed,
        title="Dashboard",
        **live,
        **_controls(signed, live["scheduler"]),
    )


@router.get("/live")
async def dashboard_live(request: Request, signed: Member, window: Window = "1h") -> Response:
    """The part htmx polls every few seconds while the page is open."""
    live = await _live(request, window)
    return page(request, "_dashboard_live.html", signed, title="Dashboard", **live)


# --- the scheduler's controls ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """A change to confirm: the values for control.apply, and the words for the person."""

    action: str  # switch, tune, rollback
    values: dict[str, Any]
    lines: list[str]


_SETTING_TO_VALUE = {"active_scheduler": "active"}


def _stored(setting: str, text: str | None) -> Any:
    """An audit row's old value back as the setting's type."""
    if text is None:
        return None
    if setting == "active_scheduler":
        return knobs.SchedulerKind(text)
    if setting == "interval_seconds":
        return float(text)
    return int(float(text))


def rollback_of(changes: list[control.ChangeRecord]) -> Proposal | None:
    """Undo the latest change (the settings one person changed at one moment)."""
    if not changes:
        return None
    latest = changes[0]
    # One change touches each setting once: the group ends where a setting comes again.
    group: list[control.ChangeRecord] = []
    for change in changes:
        if (change.at, change.actor) != (latest.at, latest.actor) or change.setting in {
            c.setting for c in group
        }:
            break
        group.append(change)
    values = {
        _SETTING_TO_VALUE.get(c.setting, c.setting): _stored(c.setting, c.old_value) for c in group
    }
    lines = [f"{c.setting}: {c.new_value or 'default'} → {c.old_value or 'default'}" for c in group]
    return Proposal("rollback", values, lines)


def _optional_number(name: str, text: str, kind: type[int] | type[float]) -> int | float | None:
    text = text.strip()
    if text in ("", "default"):
        return None
    try:
        return kind(text)
    except ValueError:
        raise InvalidValue(
            f"{name}: give a whole number, or leave it empty for the default"
        ) from None


def _proposal(form: dict[str, str]) -> Proposal:
    action = form.get("action", "")
    if action == "switch":
        kind = control.check_scheduler(form.get("active", ""))
        return Proposal("switch", {"active": kind}, [f"active scheduler → {kind}"])
    if action == "tune":
        interval_text = form.get("interval_seconds", "").strip()
        values: dict[str, Any] = {
            "concurrency": _optional_number("Concurrency", form.get("concurrency", ""), int),
            "batch_size": _optional_number("Batch size", form.get("batch_size", ""), int),
            "interval_seconds": parse_duration(interval_text) if interval_text else None,
        }
        control.check_knobs(**values)
        lines = [f"{name}: {'default' if v is None else v}" for name, v in values.items()]
        return Proposal("tune", values, lines)
    if action == "rollback":
        raise InvalidValue("rollback is proposed from the latest change")
    raise InvalidValue("choose switch, tune or roll back")


@router.post("/scheduler")
async def change_scheduler(request: Request, signed: Member) -> Response:
    """Two steps: without `confirm`, a page saying what will change; with it, the change."""
    auth.require(signed, Permission.MANAGE_SCHEDULER)
    runtime = auth.runtime_of(request)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    found = await control.status(runtime.db, runtime.settings, now=runtime.now())
    try:
        if form.get("action") == "rollback":
            proposal = rollback_of(found.changes)
            if proposal is None:
                raise InvalidValue("there is no change to roll back")
        else:
            proposal = _proposal(form)
        if proposal.values.get("active") == found.active:
            raise InvalidValue(f"{found.active} is already the active scheduler")
    except (InvalidValue, ValueError) as exc:
        return await _refused(request, signed, str(exc))
    if form.get("confirm") != "yes":
        return page(
            request,
            "dashboard_confirm.html",
            signed,
            title="Confirm the change",
            proposal=proposal,
            form=form,
        )
    try:
        await control.apply(
            runtime.db, actor=signed.actor, now=runtime.now(), values=proposal.values
        )
    except InvalidValue as exc:
        return await _refused(request, signed, str(exc))
    return RedirectResponse("/dashboard", status_code=303)


async def _refused(request: Request, signed: SignedIn, message: str) -> Response:
    live = await _live(request, "1h")
    return page(
        request,
        "dashboard.html",
        signed,
        title="Dashboard",
        status=422,
        error=message[:1].upper() + message[1:] + ".",
        **live,
        **_controls(signed, live["scheduler"]),
    )
