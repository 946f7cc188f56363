"""The attention queue: everything a person must act on, each with its action at hand.

- `unknown` deliveries (a send that may have gone out): settle as published (with its link) or
  as not published;
- failed deliveries: retry;
- accounts that need reconnecting: reconnect (on the accounts page);
- firing alerts of the service: open the dashboard.

The navigation shows the count (`/attention/count`, loaded by htmx)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from postpilot.core.roles import Permission, allows
from postpilot.core.states import AccountStatus, DeliveryStatus
from postpilot.monitor import alerts as alert_rules
from postpilot.monitor import store as monitor_store
from postpilot.monitor.store import AlertRecord
from postpilot.store import accounts, posts, webhooks
from postpilot.store.tables import Account, Delivery
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.deps import Member
from postpilot.web.render import HEADERS, page

router = APIRouter(prefix="/attention", include_in_schema=False)

SHOWN = 100  # of each kind; the count says when there are more
NOT_PUBLISHED = "not published (settled by a person)"
# Failures a person already settled (here, or as `failed` through the API) need nothing more.
SETTLED = frozenset({NOT_PUBLISHED, "marked failed by a person"})


@dataclass(frozen=True, slots=True)
class Queue:
    unknown: list[tuple[Delivery, Account]]
    failed: list[tuple[Delivery, Account]]
    reconnect: list[Account]
    alerts: list[AlertRecord]

    @property
    def count(self) -> int:
        return len(self.unknown) + len(self.failed) + len(self.reconnect) + len(self.alerts)


async def queue_of(request: Request, workspace_id: str) -> Queue:
    runtime = auth.runtime_of(request)
    async with runtime.db.session() as session:
        unknown = await posts.list_deliveries(
            session, workspace_id, status=DeliveryStatus.UNKNOWN, limit=SHOWN
        )
        failed = await posts.list_deliveries(
            session, workspace_id, status=DeliveryStatus.FAILED, limit=SHOWN
        )
        listed = await accounts.list_accounts(session, workspace_id)
    async with runtime.db.engine.connect() as conn:
        firing = await monitor_store.firing_alerts(conn)
    return Queue(
        unknown=unknown,
        # A failure on an account to reconnect is retried from there, once it is reconnected.
        failed=[
            (d, a)
            for d, a in failed
            if a.status == AccountStatus.ACTIVE.value and d.last_error not in SETTLED
        ],
        reconnect=[a for a in listed if a.status == AccountStatus.NEEDS_RECONNECT.value],
        # Service-wide alerts hold no tenant's data; an account's token alert names an account
        # of some workspace, and this workspace's own are listed as accounts to reconnect.
        alerts=[a for a in firing if a.rule != alert_rules.Rule.TOKEN_REFRESH_FAILED.value],
    )


async def _attention_page(
    request: Request, signed: SignedIn, *, status: int = 200, **shown: object
) -> Response:
    queue = await queue_of(request, signed.workspace.id)
    return page(
        request,
        "attention.html",
        signed,
        title="Attention",
        status=status,
        queue=queue,
        can_write=allows(signed.role, Permission.WRITE_POSTS),
        can_accounts=allows(signed.role, Permission.MANAGE_ACCOUNTS),
        **shown,
    )


@router.get("")
async def attention_page(request: Request, signed: Member) -> Response:
    return await _attention_page(request, signed)


@router.get("/count")
async def attention_count(request: Request, signed: Member) -> Response:
    """The navigation's badge: a number, or nothing when all is well."""
    count = (await queue_of(request, signed.workspace.id)).count
    text = f'<span class="count" aria-label="{count} to act on">{count}</span>' if count else ""
    return HTMLResponse(text, headers=HEADERS)


def _link_id(link: str) -> str:
    """A post's id on the platform, from its link when the person gave only the link."""
    return urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]


@router.post("/deliveries/{delivery_id}/settle")
async def settle(
    request: Request,
    signed: Member,
    delivery_id: str,
    outcome: Annotated[str, Form(max_length=20)],
    link: Annotated[str, Form(max_length=1000)] = "",
    platform_post_id: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """An `unknown` delivery settled by a person who looked at the platform: `published` (its
    link) or `not_published`. A failed one may be retried (`retry`)."""
    auth.require(signed, Permission.WRITE_POSTS)
    link, platform_post_id = link.strip(), platform_post_id.strip()
    if outcome not in ("published", "not_published", "retry"):
        return await _attention_page(
            request, signed, status=422, error="Choose published, not published or retry."
        )
    if outcome == "published":
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return await _attention_page(
                request,
                signed,
                status=422,
                error="Link: give the post's address on the platform (https://...).",
            )
        platform_post_id = platform_post_id or _link_id(link)
        if not platform_post_id:
            return await _attention_page(
                request, signed, status=422, error="Post id: the link names none, give it."
            )
    runtime = auth.runtime_of(request)
    async with runtime.db.transaction() as session:
        delivery = await posts.get_delivery(session, signed.workspace.id, delivery_id)
        if delivery is None:
            raise auth.Refused(404, "not_found", f"no delivery {delivery_id} in this workspace")
        allowed = {DeliveryStatus.UNKNOWN.value} | (
            {DeliveryStatus.FAILED.value} if outcome == "retry" else set()
        )
        if delivery.status not in allowed:
            return await _attention_page(
                request,
                signed,
                status=409,
                error=f"That delivery is {delivery.status} now: there is nothing to settle.",
            )
        posts.resolve_delivery(
            session,
            delivery,
            resolution="failed" if outcome == "not_published" else outcome,
            platform_post_id=platform_post_id if outcome == "published" else None,
            platform_url=link if outcome == "published" else None,
            note=NOT_PUBLISHED if outcome == "not_published" else None,
            now=runtime.now(),
            actor=signed.actor,
        )
        await webhooks.announce_resolution(session, delivery, now=runtime.now())
        if outcome == "retry":
            await posts.notify_due(session)
    if outcome == "retry":
        runtime.wakeup.set()
    return RedirectResponse("/attention", status_code=303)
