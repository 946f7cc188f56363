"""The ASGI app: routers, error shape, and a lifespan that opens the runtime, refuses an
out-of-date schema, and optionally runs the worker in the same process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from postpilot import __version__
from postpilot.api import errors, openapi, versions
from postpilot.api.guard import RequestGuard
from postpilot.api.request_metrics import RequestMetrics
from postpilot.api.routes import (
    accounts,
    activity,
    bulk,
    connect,
    cron,
    deliveries,
    health,
    keys,
    media,
    metrics,
    pages,
    performance,
    platforms,
    posts,
    public_media,
    queues,
    recurrences,
    scheduler,
    webhooks,
)
from postpilot.monitor.prometheus import PrometheusMetrics
from postpilot.runtime import ServiceRuntime, open_runtime
from postpilot.settings import Settings, get_settings
from postpilot.store import schema
from postpilot.web import app as web

ROUTERS = (
    accounts.router,
    connect.router,
    platforms.router,
    bulk.router,  # before posts: /api/posts/import and /export are not post ids
    posts.router,
    media.router,
    keys.router,
    activity.router,
    deliveries.router,
    cron.router,
    health.router,
    scheduler.router,
    performance.router,
    metrics.router,
    webhooks.router,
    queues.router,
    recurrences.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: ServiceRuntime | None = None,
    with_worker: bool = False,
) -> FastAPI:
    """`runtime` lets tests share one with their own code; otherwise the lifespan opens one."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as owned:
            if runtime is None:
                active = await owned.enter_async_context(open_runtime(settings or get_settings()))
            else:  # the caller's to close, but its schema must be current all the same
                active = runtime
                await schema.ensure_current(active.db)
            app.state.runtime = active
            worker_task: asyncio.Task[None] | None = None
            stop = asyncio.Event()
            if with_worker:
                from postpilot.scheduler.worker import Worker

                worker_task = asyncio.create_task(Worker(active).run(stop), name="worker")
            # Alerts are evaluated on a timer too: the overdue rule must fire when nothing polls.
            monitor_task = asyncio.create_task(active.monitor.run(stop), name="monitor")
            try:
                yield
            finally:
                stop.set()
                if worker_task is not None:
                    await worker_task
                await monitor_task

    limits = settings or (runtime.settings if runtime else get_settings())
    app = FastAPI(
        title="postpilot",
        version=__version__,
        description="Publishes scheduled social-media posts fast and exactly once.",
        lifespan=lifespan,
        responses=openapi.DEFAULT_RESPONSES,
        docs_url=None,  # served by the web app from local files: offline, no CDN
        redoc_url=None,
    )
    app.add_middleware(
        RequestGuard,
        max_body_bytes=limits.API_MAX_BODY_BYTES,
        uploads=media.upload_limits(limits.MEDIA_MAX_UPLOAD_BYTES)
        | bulk.upload_limits(limits.IMPORT_MAX_BYTES),
    )

    def metrics() -> PrometheusMetrics | None:
        active: ServiceRuntime | None = getattr(app.state, "runtime", None)
        return active.monitor.prometheus if active is not None else None

    # Added last, so outermost: the guard's refusals are counted too.
    app.add_middleware(RequestMetrics, metrics=metrics)
    errors.install(app)
    openapi.install(app)
    versions.mount(app, legacy=ROUTERS, v1=(pages.router,))
    app.include_router(public_media.router)  # outside /api: not versioned, no key
    web.install(app, limits)
    return app
