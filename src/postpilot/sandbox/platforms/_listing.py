"""Graph-style listings of what an account posted (Facebook `/{page-id}/published_posts`,
Instagram `/{ig-user-id}/media`, Threads `/{user-id}/threads`): newest first, `since` (Unix
seconds), `limit`, `after` cursor; `paging.next` only while more pages exist."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.state import Record


def graph_time(record: Record) -> str:
    """Graph's time format: 2026-06-01T12:00:05+0000."""
    return datetime.fromisoformat(record.received_at).strftime("%Y-%m-%dT%H:%M:%S%z")


def page(
    request: Request,
    values: dict[str, Any],
    records: Iterable[Record],
    *,
    fields: dict[str, Callable[[Record], Any]],
    headers: dict[str, str],
) -> Response:
    try:
        since = float(values.get("since") or 0)
        limit = max(1, min(int(values.get("limit") or 25), 100))
        offset = int(values.get("after") or 0)
    except ValueError:
        return JSONResponse(
            {
                "error": {
                    "message": "(#100) Invalid parameter",
                    "type": "OAuthException",
                    "code": 100,
                }
            },
            status_code=400,
        )
    wanted = [f for f in str(values.get("fields") or "id").split(",") if f in fields]
    posted = sorted(
        (r for r in records if datetime.fromisoformat(r.received_at).timestamp() >= since),
        key=lambda r: r.received_at,
        reverse=True,
    )
    chunk = posted[offset : offset + limit]
    body: dict[str, Any] = {
        "data": [{"id": r.id, **{f: fields[f](r) for f in wanted if f != "id"}} for r in chunk]
    }
    after = offset + limit
    cursors = {"before": str(offset), "after": str(after)}
    body["paging"] = {"cursors": cursors}
    if after < len(posted):
        query = {**dict(request.query_params), "after": str(after)}
        body["paging"]["next"] = f"{request.url.replace(query=urlencode(query))}"
    return JSONResponse(body, headers=headers)
