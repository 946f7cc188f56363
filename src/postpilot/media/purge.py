"""Retention: media no post has used for MEDIA_RETENTION_DAYS is removed, rows first (in
batches, each its own transaction), then files. Never media an unfinished delivery needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from postpilot.media import library
from postpilot.media.storage import MediaStorage
from postpilot.store import media as store_media
from postpilot.store.database import Database

BATCH = 100
DRY_RUN_LIMIT = 100_000


@dataclass
class Purged:
    ids: list[str] = field(default_factory=list)
    bytes_freed: int = 0


async def purge(
    db: Database,
    storage: MediaStorage,
    *,
    now: datetime,
    retention_days: int,
    dry_run: bool = False,
    batch: int = BATCH,
) -> Purged:
    cutoff = now - timedelta(days=retention_days)
    purged = Purged()
    while True:
        async with db.transaction() as session:
            limit = DRY_RUN_LIMIT if dry_run else batch
            items = await store_media.purgeable(session, cutoff, limit=limit)
            if dry_run:
                # One look is the answer: nothing is removed, so another would repeat it.
                purged.ids = [i.id for i in items]
                purged.bytes_freed = sum(i.size_bytes + i.variant_size_bytes for i in items)
                return purged
            for item in items:
                await store_media.remove(session, item.id)
            found = [(i.id, i.size_bytes + i.variant_size_bytes) for i in items]
        # Committed: no row names these files any more.
        for media_id, size in found:
            await library.discard(storage, media_id)
            purged.ids.append(media_id)
            purged.bytes_freed += size
        if len(found) < batch:
            return purged
