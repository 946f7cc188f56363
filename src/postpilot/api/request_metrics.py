"""Every API request counted and timed for Prometheus (`/metrics`), by method, route template
and status. The template, not the raw path: ids in paths would make a series each."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postpilot.monitor.prometheus import PrometheusMetrics

UNMATCHED = "unmatched"  # no route: a 404, or refused before routing (the guard's 413 and 422)


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, metrics: Callable[[], PrometheusMetrics | None]) -> None:
        self.app = app
        self.metrics = metrics  # the runtime's, once the lifespan has opened it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if (metrics := self.metrics()) is not None:
                metrics.observe_request(
                    method=scope["method"],
                    route=getattr(scope.get("route"), "path", None) or UNMATCHED,
                    status=status,
                    seconds=time.perf_counter() - started,
                )
