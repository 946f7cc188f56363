"""The calendar page: month, week, day and list views of the workspace's posts in the viewer's
time zone, filtered by account, status and author. A grid's day shows its first few posts and
how many more there are, linking to the day (a busy month is otherwise one enormous page).
Rescheduling (drag and drop, or the form beside each post) goes through PATCH /api/posts/{id}
from calendar.js, so the API's validation and DST rules are the only ones."""

from __future__ import annotations

import functools
import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from postpilot.core import timezones
from postpilot.core.roles import Permission, allows
from postpilot.core.states import PostStatus
from postpilot.store import accounts, calendar
from postpilot.web import auth
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(include_in_schema=False)

TZ_COOKIE = "pp_tz"  # set by calendar.js from the browser's zone
LIST_PAGE = 50
# A grid's day shows this many posts, in time order, and links to the day for the rest: a
# month cell has room for a few, a week's column for more.
PER_DAY = {"month": 5, "week": 12}
View = Literal["month", "week", "day", "list"]


def viewer_zone(request: Request, given: str | None, saved: str | None) -> str:
    """The zone the page is shown in: the query's, else the user's own setting (`saved`), else
    the browser's cookie, else UTC."""
    # The script writes the cookie URL-encoded ("Europe%2FParis").
    for name in (given, saved, browser_zone(request)):
        if name:
            try:
                timezones.zone(name)
            except timezones.InvalidTimeZone:
                continue
            return name
    return "UTC"


def browser_zone(request: Request) -> str | None:
    """The zone the browser's cookie names, when it is a real one."""
    name = unquote(request.cookies.get(TZ_COOKIE, ""))
    try:
        return timezones.zone(name).key if name else None
    except timezones.InvalidTimeZone:
        return None


def account_hue(account_id: str) -> int:
    """A stable colour per account, on top of its platform's."""
    return int(hashlib.sha256(account_id.encode()).hexdigest()[:4], 16) % 360


@dataclass(frozen=True, slots=True)
class Shown:
    """A post as the page shows it: its time in the viewer's zone."""

    entry: calendar.Entry
    local: datetime
    editable: bool

    @property
    def status(self) -> str:
        return self.entry.status.value

    @property
    def hue(self) -> int:
        return account_hue(self.entry.targets[0].account_id) if self.entry.targets else 0


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    in_range: bool
    posts: list[Shown]  # the first few
    total: int  # all of the day's posts

    @property
    def more(self) -> int:
        return self.total - len(self.posts)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def _window(view: View, anchor: date) -> tuple[date, date, date, date]:
    """(first day shown, day after the last shown, first day of the range, day after it)."""
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return start, start + timedelta(days=7), start, start + timedelta(days=7)
    first = anchor.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    start = first - timedelta(days=first.weekday())
    end = after + timedelta(days=(7 - after.weekday()) % 7)
    return start, end, first, after


def _neighbours(view: View, anchor: date) -> tuple[date, date]:
    if view == "month":
        first = anchor.replace(day=1)
        return (first - timedelta(days=1)).replace(day=1), (first + timedelta(days=32)).replace(
            day=1
        )
    step = timedelta(days=1 if view == "day" else 7)
    return anchor - step, anchor + step


def _shown(entry: calendar.Entry, zone: ZoneInfo, can_edit: bool) -> Shown:
    return Shown(
        entry=entry,
        local=timezones.as_utc(entry.scheduled_at).astimezone(zone),
        editable=can_edit and entry.status is PostStatus.SCHEDULED,
    )


@router.get("/calendar")
async def calendar_page(
    request: Request,
    signed: Member,
    view: View = "month",
    day: Annotated[date | None, Query(alias="date")] = None,
    account: Annotated[str | None, Query(max_length=36)] = None,
    status: PostStatus | None = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    tz: Annotated[str | None, Query(max_length=timezones.MAX_ZONE_NAME)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    auth.require(signed, Permission.READ)
    runtime = auth.runtime_of(request)
    zone_name = viewer_zone(request, tz, signed.user.timezone)
    zone = timezones.zone(zone_name)
    today = runtime.now().astimezone(zone).date()
    anchor = day or today
    filters = calendar.Filters(account_id=account or None, author=author or None, status=status)
    can_edit = allows(signed.role, Permission.WRITE_POSTS)
    workspace_id = signed.workspace.id
    context: dict[str, Any] = {}
    async with runtime.db.session() as session:
        if view in ("list", "day"):
            entries = await calendar.page_from(
                session,
                workspace_id,
                _midnight(anchor, zone),
                filters,
                size=LIST_PAGE,
                offset=offset,
                end=_midnight(anchor + timedelta(days=1), zone) if view == "day" else None,
            )
            context["has_next"] = len(entries) > LIST_PAGE
            context["posts"] = [_shown(e, zone, can_edit) for e in entries[:LIST_PAGE]]
        else:
            start, end, first, after = _window(view, anchor)
            dates = [start + timedelta(days=n) for n in range((end - start).days)]
            bounds = [_midnight(d, zone) for d in [*dates, end]]
            found = await calendar.grid(
                session, workspace_id, bounds, filters, per_day=PER_DAY[view]
            )
            empty = calendar.GridDay(0, [])
            context["days"] = [
                Day(
                    d,
                    first <= d < after,
                    [_shown(e, zone, can_edit) for e in found.get(index, empty).entries],
                    found.get(index, empty).total,
                )
                for index, d in enumerate(dates)
            ]
        known_accounts = await accounts.list_accounts(session, workspace_id)
        known_authors = await calendar.authors(session, workspace_id)
    before, next_ = _neighbours(view, anchor)
    filter_values = {
        "account": account or "",
        "status": status.value if status else "",
        "author": author or "",
    }
    # What the page's links carry over: the filters that are set (an empty status is no
    # status), and the zone when the query chose it.
    kept = {**filter_values, "tz": tz and zone_name}
    return page(
        request,
        "calendar.html",
        signed,
        title="Calendar",
        view=view,
        anchor=anchor,
        today=today,
        before=before,
        next=next_,
        zone=zone_name,
        zone_given=tz is not None,
        zones=sorted(all_zones() | {zone_name}),
        filters=filter_values,
        keep="".join(f"&{urlencode({k: v})}" for k, v in kept.items() if v),
        accounts=known_accounts,
        authors=known_authors,
        statuses=[s.value for s in PostStatus if s is not PostStatus.CANCELLED],
        can_edit=can_edit,
        offset=offset,
        list_page=LIST_PAGE,
        **context,
    )


@functools.cache
def all_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})
