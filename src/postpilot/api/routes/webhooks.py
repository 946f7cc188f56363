"""/api/webhooks: the workspace's event subscriptions and each one's delivery log.

A URL must name a public address (or one the operator allowed) when it is saved, and is sent
to through the public-only client all the same. The signing secret is write-only."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Response

from postpilot.api import pagination
from postpilot.api.deps import RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.webhook_schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
)
from postpilot.core.timezones import as_utc
from postpilot.monitor.outbox import seal_secret
from postpilot.publishers import urls
from postpilot.publishers.addresses import AddressPolicy
from postpilot.store import webhooks
from postpilot.store.tables import WebhookOutbox, WebhookSubscription

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

Limit = pagination.Limit
Cursor = pagination.Cursor
# Each list's cursors are its own: one from the other list is refused.
SUBSCRIPTIONS, DELIVERIES = "webhooks", "webhook_deliveries"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such subscription (or delivery) in this workspace."}
}


def public(row: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=row.id,
        url=row.url,
        events=list(row.events),
        enabled=row.enabled,
        description=row.description,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def delivery(row: WebhookOutbox) -> WebhookDeliveryPublic:
    pending = row.status == webhooks.OutboxStatus.PENDING.value
    return WebhookDeliveryPublic(
        id=row.id,
        event_id=row.event_id,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at) if pending else None,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        sent_at=as_utc(row.sent_at) if row.sent_at else None,
        payload=row.payload,
    )


def checked_url(value: str, policy: AddressPolicy) -> str:
    """The URL as given, once it passed the public-address check (422 otherwise)."""
    try:
        urls.check_account_url(value, policy)
    except urls.UnusableUrl as exc:
        details = [{"field": "url", "message": str(exc)}]
        raise ApiError(422, "invalid_request", f"url: {exc}", details) from None
    return value


def encode_cursor(kind: str, last: WebhookSubscription | WebhookOutbox | None) -> str | None:
    """The next page's cursor: None when there is no next page (`last` is None)."""
    return pagination.encode_moment(kind, last.created_at, last.id) if last else None


def decode_cursor(kind: str, cursor: str | None) -> webhooks.Position | None:
    key = pagination.decode_moment(kind, cursor)
    return webhooks.Position(*key) if key else None


async def owned(
    session: SessionDep, workspace_id: str, webhook_id: uuid.UUID
) -> WebhookSubscription:
    row = await webhooks.get_subscription(session, workspace_id, str(webhook_id))
    if row is None:
        raise not_found("webhook", str(webhook_id))
    return row


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={422: {"description": "A field is not valid, or the URL is not public."}},
)
async def create_webhook(
    body: WebhookCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> WebhookCreated:
    """Subscribe a URL to this workspace's events. Without `secret` one is generated; either
    way this is the only answer that shows it."""
    url = checked_url(body.url, runtime.publish.addresses)
    secret = body.secret or secrets.token_urlsafe(32)
    row = await webhooks.create_subscription(
        session,
        workspace_id=workspace.id,
        url=url,
        events=body.events,
        secret=seal_secret(runtime.cipher, secret),
        enabled=body.enabled,
        description=body.description,
        now=runtime.now(),
    )
    await session.commit()
    return WebhookCreated(**public(row).model_dump(), secret=secret)


@router.get("", response_model=WebhookPage, responses=pagination.INVALID_CURSOR)
async def list_webhooks(
    workspace: WorkspaceDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookPage:
    """Newest first."""
    rows = await webhooks.list_subscriptions(
        session, workspace.id, limit=limit + 1, after=decode_cursor(SUBSCRIPTIONS, cursor)
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    return WebhookPage(
        items=[public(r) for r in page],
        next_cursor=encode_cursor(SUBSCRIPTIONS, last if more else None),
    )


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=NOT_FOUND)
async def get_webhook(
    webhook_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep
) -> WebhookPublic:
    return public(await owned(session, workspace.id, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookPublic,
    responses={
        **NOT_FOUND,
        422: {"description": "A field is not valid, or the URL is not public."},
    },
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WebhookPublic:
    """Change what is given: `enabled: false` pauses it (its pending events wait, new ones
    are not written for it); a new `secret` signs every later attempt."""
    nulls = sorted(name for name in body.model_fields_set if getattr(body, name) is None)
    if nulls:
        details = [{"field": name, "message": "may not be null"} for name in nulls]
        raise ApiError(422, "invalid_request", f"{', '.join(nulls)}: may not be null", details)
    if body.url is not None:
        checked_url(body.url, runtime.publish.addresses)
    row = await owned(session, workspace.id, webhook_id)
    if body.url is not None:
        row.url = body.url
    if body.events is not None:
        row.events = body.events
    if body.secret is not None:
        row.secret = seal_secret(runtime.cipher, body.secret)
    if body.enabled is not None:
        row.enabled = body.enabled
    if body.description is not None:
        row.description = body.description
    row.updated_at = runtime.now()
    await session.commit()
    return public(row)


@router.delete("/{webhook_id}", status_code=204, responses=NOT_FOUND)
async def delete_webhook(
    webhook_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep
) -> Response:
    """Remove it and its delivery log; what was pending is not sent."""
    row = await owned(session, workspace.id, webhook_id)
    await webhooks.delete_subscription(session, row)
    await session.commit()
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=WebhookDeliveryPage,
    responses=NOT_FOUND | pagination.INVALID_CURSOR,
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: webhooks.OutboxStatus | None = None,
) -> WebhookDeliveryPage:
    """Every event written for this subscription, newest first, with what its last attempt
    got."""
    row = await owned(session, workspace.id, webhook_id)
    found = await webhooks.list_deliveries(
        session, row.id, limit=limit + 1, after=decode_cursor(DELIVERIES, cursor), status=status
    )
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    return WebhookDeliveryPage(
        items=[delivery(r) for r in page],
        next_cursor=encode_cursor(DELIVERIES, last if more else None),
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=WebhookDeliveryPublic,
    responses=NOT_FOUND,
)
async def retry_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WebhookDeliveryPublic:
    """Send this event again (a failed one, or a sent one the receiver lost), with a fresh
    count of attempts; the same `X-Postpilot-Id` lets the receiver deduplicate."""
    row = await owned(session, workspace.id, webhook_id)
    again = await webhooks.redeliver(session, row.id, str(delivery_id), now=runtime.now())
    if again is None:
        raise not_found("webhook delivery", str(delivery_id))
    await session.commit()
    runtime.monitor.outbox.wake()
    return delivery(again)
