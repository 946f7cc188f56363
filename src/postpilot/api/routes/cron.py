"""Cron endpoints: one pass of either scheduler, and one look at the `unknown` deliveries, for
setups that trigger them with curl."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from postpilot.api.deps import RuntimeDep, require_cron_secret
from postpilot.api.queue_schemas import PlanSummary
from postpilot.api.schemas import PassRequest, PassSummary, ReconcileSummary
from postpilot.core.knobs import SchedulerKind
from postpilot.scheduler import reconcile, recurring
from postpilot.scheduler.passes import cron_pass

router = APIRouter(prefix="/api/cron", tags=["cron"], dependencies=[Depends(require_cron_secret)])

OptionalPass = Annotated[PassRequest | None, Body()]


async def _pass(runtime: RuntimeDep, kind: SchedulerKind, body: PassRequest | None) -> PassSummary:
    body = body or PassRequest()
    report = await cron_pass(
        runtime, scheduler=kind, limit=body.limit, concurrency=body.concurrency
    )
    return PassSummary.model_validate(report.summary())


@router.post("/scheduler", response_model=PassSummary)
async def reference_pass(runtime: RuntimeDep, body: OptionalPass = None) -> PassSummary:
    """One pass of the reference scheduler (one delivery at a time)."""
    return await _pass(runtime, SchedulerKind.REFERENCE, body)


@router.get("/scheduler", response_model=PassSummary)
async def reference_pass_get(runtime: RuntimeDep) -> PassSummary:
    """The same with the configured defaults, for plain `curl` from cron."""
    return await _pass(runtime, SchedulerKind.REFERENCE, None)


@router.post("/scheduler-optimized", response_model=PassSummary)
async def optimized_pass(runtime: RuntimeDep, body: OptionalPass = None) -> PassSummary:
    """One pass of the optimized scheduler (batched claim, bounded concurrency, bulk writes)."""
    return await _pass(runtime, SchedulerKind.OPTIMIZED, body)


@router.get("/scheduler-optimized", response_model=PassSummary)
async def optimized_pass_get(runtime: RuntimeDep) -> PassSummary:
    return await _pass(runtime, SchedulerKind.OPTIMIZED, None)


@router.post("/reconcile", response_model=ReconcileSummary)
async def reconcile_unknown(runtime: RuntimeDep) -> ReconcileSummary:
    """Read back the platforms of `unknown` deliveries whose next look is due: found means
    published, provably absent means published again. Workers do this by themselves; cron-only
    setups call it every minute or so."""
    report = await reconcile.reconcile_unknown(runtime)
    return ReconcileSummary.model_validate(vars(report))


@router.get("/reconcile", response_model=ReconcileSummary)
async def reconcile_unknown_get(runtime: RuntimeDep) -> ReconcileSummary:
    """The same, for plain `curl` from cron."""
    return await reconcile_unknown(runtime)


@router.post("/plans", response_model=PlanSummary)
async def plans(runtime: RuntimeDep) -> PlanSummary:
    """Make the coming week's occurrences of recurring posts into posts and bring published
    evergreen posts back to their queue. Workers do this every minute by themselves; cron-only
    setups call it (GET or POST) every few minutes."""
    report = await recurring.run_once(runtime)
    return PlanSummary(
        occurrences_made=report.occurrences_made, evergreen_requeued=report.evergreen_requeued
    )


@router.get("/plans", response_model=PlanSummary)
async def plans_get(runtime: RuntimeDep) -> PlanSummary:
    """The same, for plain `curl` from cron."""
    return await plans(runtime)
