"""The due workload of a database, copied into scratch databases where schedulers can run on it.

How the copy is made (the same for SQLite and PostgreSQL): one read-only transaction on the
source (REPEATABLE READ on PostgreSQL) selects the deliveries a pass would claim at that moment
(pending, `due_at <= now`, earliest first, at most `limit`) together with their posts, accounts
and workspaces (`store/workload.py`). Each scratch database is a new database migrated to the
current schema (`store/scratch.py`), into which those rows are inserted unchanged, except that
media URLs point at the sandbox so nothing is fetched from the internet. The source is only read:
no lock is taken, no row is written, and workers may keep running. Copying rows rather than the
whole database keeps the copy proportional to the workload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from postpilot.errors import PostpilotError
from postpilot.store import workload as copies
from postpilot.store.database import Database


class NothingDue(PostpilotError):
    """No delivery is due in the source database."""


@dataclass
class Workload:
    taken_at: datetime
    limit: int
    rows: copies.Rows = field(default_factory=dict)

    @property
    def delivery_ids(self) -> list[str]:
        return [row["id"] for row in self.rows.get("deliveries", [])]

    @property
    def size(self) -> int:
        return len(self.rows.get("deliveries", []))

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


async def take(source: Database, *, now: datetime, limit: int) -> Workload:
    """Read the due workload in one consistent snapshot; never writes to `source`."""
    rows = await copies.read_due(source, now=now, limit=limit)
    return Workload(taken_at=now, limit=limit, rows=rows)


def sandbox_media(urls: Sequence[str], sandbox_url: str) -> list[str]:
    """The same number of media, served by the sandbox; the file name is kept so an image stays
    an image (`*.png`) and a non-image stays one."""
    rewritten = []
    for index, url in enumerate(urls):
        name = Path(urlsplit(url).path).name or f"media-{index}.png"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
        rewritten.append(f"{sandbox_url.rstrip('/')}/_sandbox/media/{name}")
    return rewritten


async def materialize(workload: Workload, target: Database, *, sandbox_url: str) -> None:
    """Insert the workload into a migrated, empty `target`, its media served by the sandbox."""
    rows = dict(workload.rows)
    rows["posts"] = [
        {**row, "media_urls": sandbox_media(row["media_urls"] or [], sandbox_url)}
        for row in rows.get("posts", [])
    ]
    await copies.insert_rows(target, rows)
