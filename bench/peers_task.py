"""procrastinate publishing postpilot's deliveries: one job per delivery, its own worker on the
same PostgreSQL database (procrastinate's tables beside postpilot's), the same publishers and
`PublishContext`. Imported only by `bench.peers`' child process (procrastinate is in the `bench`
extra)."""

from __future__ import annotations

import resource
import time
from typing import Any

import procrastinate
from procrastinate.types import JSONDict
from sqlalchemy import select, update

from bench import common
from postpilot.core import figures, outcomes
from postpilot.errors import PostpilotError
from postpilot.publishers.base import AccountContext, PublishRequest
from postpilot.publishers.registry import PUBLISHERS
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.store.tables import Account, Delivery, Post

RETRIES = 5


class NotPublished(PostpilotError):
    """The publisher did not publish it: procrastinate retries the job."""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def publish_delivery(runtime: ServiceRuntime, delivery_id: str) -> None:
    """Read, publish, record: what a task of a generic queue does for one delivery."""
    query = (
        select(
            Delivery.platform,
            Delivery.idempotency_key,
            Delivery.scheduled_at,
            Delivery.attempts,
            Post.text,
            Post.media_urls,
            Post.overrides,
            Account.id,
            Account.handle,
            Account.base_url,
            Account.options,
            Account.credentials,
            Account.token_expires_at,
        )
        .join(Post, Post.id == Delivery.post_id)
        .join(Account, Account.id == Delivery.account_id)
        .where(Delivery.id == delivery_id)
    )
    async with runtime.db.engine.connect() as conn:  # columns, not ORM objects: a lean task
        row = (await conn.execute(query)).one()
    context = AccountContext(
        id=row.id,
        platform=row.platform,
        handle=row.handle,
        base_url=row.base_url,
        options=row.options,
        credentials=runtime.cipher.decrypt(row.credentials),
        token_expires_at=row.token_expires_at,
    )
    request = PublishRequest(
        delivery_id=delivery_id,
        idempotency_key=row.idempotency_key,
        text=row.overrides.get(row.platform, row.text),
        media_urls=tuple(row.media_urls),
        account=context,
        scheduled_at=row.scheduled_at,
        attempt=row.attempts + 1,
    )
    outcome = await PUBLISHERS[row.platform].publish(request, runtime.publish)
    if not isinstance(outcome, outcomes.Published):
        raise NotPublished(f"{delivery_id}: {outcome}")
    now = runtime.now()
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(
                status="published",
                platform_post_id=outcome.platform_post_id,
                published_at=now,
                attempts=Delivery.attempts + 1,
                updated_at=now,
            )
        )


async def drain(spec: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(spec["concurrency"])
    settings = common.bench_settings(
        database_url=spec["database_url"],
        sandbox_url=spec["sandbox_url"],
        concurrency=concurrency,
    )
    runtime = build_runtime(settings)
    database = spec["database_url"].rsplit("/", 1)[1]
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=common.pg_dsn(database), min_size=1, max_size=concurrency + 4
        )
    )

    @app.task(name="publish_delivery", retry=RETRIES)
    async def publish(delivery_id: str) -> None:
        await publish_delivery(runtime, delivery_id)

    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            async with runtime.db.engine.connect() as conn:
                ids = list(
                    (await conn.execute(select(Delivery.id).order_by(Delivery.due_at))).scalars()
                )
            jobs: list[JSONDict] = [{"delivery_id": i} for i in ids]
            for first in range(0, len(jobs), 1000):
                await publish.batch_defer_async(*jobs[first : first + 1000])
            cpu_start, started = cpu_seconds(), time.perf_counter()
            await app.run_worker_async(
                concurrency=concurrency,
                wait=False,  # stop once the queue is drained
                install_signal_handlers=False,
                listen_notify=False,
                delete_jobs="never",
            )
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_start
        async with runtime.db.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT count(*) FROM deliveries WHERE status = 'published'"
            )
            published = int(rows.scalar_one())
    finally:
        await runtime.close()
    return {
        "mode": "procrastinate",
        "wall_s": wall,
        "jobs": len(ids),
        "published": published,
        "deliveries_per_s": figures.throughput(published, wall),
        "cpu_ms_per_delivery": figures.per_delivery(cpu * 1000, published),
    }
