"""Reading an account's recent posts back from a Graph-style listing (Facebook Pages, Instagram,
Threads): `GET /{id}/{edge}?fields=...&since=<unix s>&limit=N`, newest first, `paging.next`
present while more pages exist, `paging.cursors.after` to ask for the next one.

The next page is asked for with our own URL and the `after` cursor, never by following the URL
the answer carries. The listing is complete when a page comes without `paging.next` within
MAX_PAGES; a longer one is cut and says so (the caller then cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from postpilot.core import readback
from postpilot.publishers import flow, graph
from postpilot.publishers.base import Lookup, PublishContext

PAGE_SIZE = 100
MAX_PAGES = 10


@dataclass(frozen=True)
class Edge:
    """Where a platform lists an account's posts and how it names their fields."""

    text_field: str  # "message", "caption", "text"
    time_field: str  # "created_time", "timestamp"
    url_field: str  # "permalink_url", "permalink"


async def read(
    ctx: PublishContext,
    url: str,
    headers: dict[str, str],
    *,
    edge: Edge,
    lookup: Lookup,
    where: str,
) -> readback.ReadBack:
    """Read the listing at `url` back to `lookup.since` and decide whether our post is in it."""
    params = {
        "fields": f"id,{edge.text_field},{edge.time_field},{edge.url_field}",
        "since": str(int(lookup.since.timestamp())),
        "limit": str(PAGE_SIZE),
    }
    candidates: list[readback.Candidate] = []
    complete = False
    for _ in range(MAX_PAGES):
        try:
            response = await ctx.http.get(url, params=params, headers=headers)
        except httpx.TransportError as exc:
            return readback.CannotTell(f"{where}: {type(exc).__name__}")
        if response.status_code != 200:
            return readback.CannotTell(f"{where}: {graph.describe(response)}")
        body = flow.body_of(response)
        data = body.get("data")
        if not isinstance(data, list):
            return readback.CannotTell(f"{where}: the answer has no list of posts")
        candidates.extend(_candidate(item, edge) for item in data if isinstance(item, dict))
        paging = body.get("paging")
        if not isinstance(paging, dict) or not paging.get("next"):
            complete = True
            break
        after = (paging.get("cursors") or {}).get("after")
        if not after:
            return readback.CannotTell(f"{where}: more posts but no cursor")
        params["after"] = str(after)
    listing = readback.Listing(tuple(candidates), complete=complete, where=where)
    return readback.decide(
        listing, text=lookup.request.text, since=lookup.since, taken=lookup.taken
    )


def _candidate(item: dict[str, Any], edge: Edge) -> readback.Candidate:
    url = item.get(edge.url_field)
    return readback.Candidate(
        id=str(item.get("id") or ""),
        text=str(item.get(edge.text_field) or ""),
        at=_time(item.get(edge.time_field)),
        url=str(url) if url else None,
    )


def _time(value: object) -> datetime | None:
    """Graph times look like 2026-06-01T12:00:05+0000."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
