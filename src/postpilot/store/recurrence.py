"""Recurring posts in the store: the rules, and the job that makes their occurrences into posts
a window ahead.

Each occurrence is its own post (and so its own deliveries, each with its own exactly-once
identity). The occurrence row's primary key (recurrence_id, occurrence_at) is inserted first,
with ON CONFLICT DO NOTHING, in the transaction that creates the post: two workers, a retry or
an overlapping window materialising the same occurrence make one row and so one post (on
PostgreSQL the second insert waits for the first transaction and then does nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core import recurrence as rules
from postpilot.core.states import DeliveryStatus
from postpilot.core.timezones import as_utc
from postpilot.errors import PostpilotError
from postpilot.store import accounts as store_accounts
from postpilot.store import media as store_media
from postpilot.store import posts as store_posts
from postpilot.store.tables import Occurrence, Recurrence, table_of

# How far ahead occurrences become posts: they are then visible, editable and cancellable.
WINDOW = timedelta(days=7)
# An occurrence whose time passed while no worker ran (the rule existing and active) is still
# made, and published at once, when it is at most this late; later, its moment has gone (a
# morning post at night) and it is skipped. How late it was made is kept with it.
MAX_LATE = timedelta(hours=6)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"


def rule_of(recurrence: Recurrence) -> rules.Rule:
    return rules.Rule(
        recurrence.rrule,
        datetime.strptime(recurrence.starts_local, LOCAL_FORMAT),
        recurrence.timezone,
    )


async def create_recurrence(
    session: AsyncSession,
    *,
    workspace_id: str,
    rule: rules.Rule,
    text_: str,
    media_urls: list[str],
    overrides: dict[str, str],
    account_ids: list[str],
    now: datetime,
) -> Recurrence:
    recurrence = Recurrence(
        workspace_id=workspace_id,
        rrule=rule.text,
        starts_local=rule.starts_local.strftime(LOCAL_FORMAT),
        timezone=rule.tz_name,
        text=text_,
        media_urls=media_urls,
        overrides=overrides,
        account_ids=account_ids,
        paused=False,
        created_at=now,
        updated_at=now,
    )
    session.add(recurrence)
    await session.flush()
    return recurrence


async def get_recurrence(
    session: AsyncSession, workspace_id: str, recurrence_id: str
) -> Recurrence | None:
    found = await session.get(Recurrence, recurrence_id)
    return found if found is not None and found.workspace_id == workspace_id else None


async def list_recurrences(session: AsyncSession, workspace_id: str) -> list[Recurrence]:
    rows = await session.execute(
        select(Recurrence)
        .where(Recurrence.workspace_id == workspace_id)
        .order_by(Recurrence.created_at, Recurrence.id)
    )
    return list(rows.scalars())


async def occurrences(session: AsyncSession, recurrence_id: str) -> list[Occurrence]:
    rows = await session.execute(
        select(Occurrence)
        .where(Occurrence.recurrence_id == recurrence_id)
        .order_by(Occurrence.occurrence_at)
    )
    return list(rows.scalars())


async def cancel_pending(
    session: AsyncSession, recurrence: Recurrence, *, now: datetime, actor: str
) -> int:
    """Cancel the occurrences made ahead that have not started (on pause, edit or delete)."""
    views = []
    for occurrence in await occurrences(session, recurrence.id):
        view = await store_posts.get_post(session, recurrence.workspace_id, occurrence.post_id)
        if view is None or view.post.cancelled_at is not None:
            continue
        if all(
            d.status == DeliveryStatus.SCHEDULED.value and d.attempts == 0
            for d, _ in view.deliveries
        ):
            views.append((occurrence, view))
    for occurrence, view in views:
        await store_posts.cancel_post(session, view, now=now, actor=actor)
        # The occurrence may be made again (after an edit or a resume) as a new post.
        await session.execute(
            delete(Occurrence).where(
                Occurrence.recurrence_id == occurrence.recurrence_id,
                Occurrence.occurrence_at == occurrence.occurrence_at,
            )
        )
    return len(views)


async def materialise(
    session: AsyncSession,
    *,
    now: datetime,
    window: timedelta = WINDOW,
    recurrence_ids: Sequence[str] | None = None,
) -> int:
    """Make every occurrence in [now, now + window) of the active rules a post, once, and those
    that passed at most MAX_LATE ago since the rule was made, paused or resumed (late:
    published at once). Returns how many posts this call made."""
    query = select(Recurrence).where(Recurrence.paused.is_(False))
    if recurrence_ids is not None:
        query = query.where(Recurrence.id.in_(recurrence_ids))
    made = 0
    for recurrence in (await session.execute(query)).scalars():
        made += await _materialise_one(session, recurrence, now=now, end=now + window)
    return made


async def _materialise_one(
    session: AsyncSession, recurrence: Recurrence, *, now: datetime, end: datetime
) -> int:
    # Never before the rule was active: what passed while it was paused stays skipped.
    start = max(as_utc(now) - MAX_LATE, as_utc(recurrence.updated_at))
    instants = list(rule_of(recurrence).between(min(start, as_utc(now)), end))
    if not instants:
        return 0
    done = {
        row[0]
        for row in await session.execute(
            select(Occurrence.occurrence_at).where(
                Occurrence.recurrence_id == recurrence.id,
                Occurrence.occurrence_at.in_(instants),
            )
        )
    }
    found = await store_accounts.accounts_by_ids(
        session, recurrence.workspace_id, list(recurrence.account_ids)
    )
    targets = [found[i] for i in recurrence.account_ids if i in found]
    if not targets:
        return 0  # every account was deleted: nothing to post to
    library = [i for url in recurrence.media_urls if (i := store_media.referenced_id(url))]
    made = 0
    for instant in instants:
        if any(as_utc(instant) == as_utc(d) for d in done):
            continue
        try:
            # A savepoint: a post made for an occurrence another worker made first is undone.
            async with session.begin_nested():
                post = await store_posts.create_post(
                    session,
                    workspace_id=recurrence.workspace_id,
                    text_=recurrence.text,
                    media_urls=list(recurrence.media_urls),
                    overrides=dict(recurrence.overrides),
                    scheduled_at=instant,
                    timezone=recurrence.timezone,
                    accounts=targets,
                    source="recurrence",
                    now=now,
                    actor="recurrence",
                )
                late = max(0, int((as_utc(now) - as_utc(instant)).total_seconds()))
                if not await _claim(session, recurrence.id, instant, post.id, late or None):
                    raise _MadeElsewhere
                # Like a post made with media_ids: its deliveries keep the media from deletion.
                await store_media.link_post(session, post.id, library, now)
        except _MadeElsewhere:
            continue
        made += 1
    return made


class _MadeElsewhere(PostpilotError):
    """The occurrence exists already: roll back the post made for it."""


async def _claim(
    session: AsyncSession,
    recurrence_id: str,
    instant: datetime,
    post_id: str,
    late_seconds: int | None,
) -> bool:
    """Insert the occurrence row; False when it exists already (its unique identity)."""
    values: dict[str, Any] = {
        "recurrence_id": recurrence_id,
        "occurrence_at": instant,
        "post_id": post_id,
        "late_seconds": late_seconds,
    }
    table = table_of(Occurrence)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["recurrence_id", "occurrence_at"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_paused(
    session: AsyncSession, recurrence: Recurrence, paused: bool, now: datetime
) -> None:
    # Only a change counts: updated_at is when the rule last became active (late occurrences
    # are made from then on), which a PATCH that changes nothing must not move.
    await session.execute(
        update(Recurrence)
        .where(Recurrence.id == recurrence.id, Recurrence.paused.is_not(paused))
        .values(paused=paused, updated_at=now)
    )
