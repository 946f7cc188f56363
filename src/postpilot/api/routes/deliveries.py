"""/api/deliveries: list deliveries (e.g. the `unknown` ones) and resolve them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.routes.posts import delivery_public
from postpilot.api.schemas import DeliveryPublic, ResolveDelivery
from postpilot.core.states import DeliveryStatus
from postpilot.store import posts, webhooks
from postpilot.store.tables import Account

router = APIRouter(prefix="/api/deliveries", tags=["deliveries"])


@router.get("", response_model=list[DeliveryPublic])
async def list_deliveries(
    workspace: WorkspaceDep,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryPublic]:
    rows = await posts.list_deliveries(session, workspace.id, status=status, limit=limit)
    return [delivery_public(d, a) for d, a in rows]


@router.post(
    "/{delivery_id}/resolve",
    response_model=DeliveryPublic,
    responses={409: {"description": "Only unknown or failed deliveries can be resolved."}},
)
async def resolve(
    delivery_id: str,
    body: ResolveDelivery,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> DeliveryPublic:
    delivery = await posts.get_delivery(session, workspace.id, delivery_id)
    if delivery is None:
        raise not_found("delivery", delivery_id)
    if delivery.status not in (DeliveryStatus.UNKNOWN.value, DeliveryStatus.FAILED.value):
        raise ApiError(
            409,
            "not_resolvable",
            f"the delivery is {delivery.status}; only unknown or failed deliveries can be resolved",
        )
    if body.resolution == "published" and not body.platform_post_id:
        raise ApiError(
            422, "invalid_request", "platform_post_id: give the id of the post on the platform"
        )
    posts.resolve_delivery(
        session,
        delivery,
        resolution=body.resolution,
        platform_post_id=body.platform_post_id,
        platform_url=body.platform_url,
        note=body.note,
        now=runtime.now(),
        actor=actor,
    )
    await webhooks.announce_resolution(session, delivery, now=runtime.now())
    if body.resolution == "retry":
        await posts.notify_due(session)
    await session.commit()
    runtime.wakeup.set()
    account = await session.get(Account, delivery.account_id)
    assert account is not None
    return delivery_public(delivery, account)
