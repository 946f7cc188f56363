"""What the monitor and cache tests share: a real HTTP receiver for webhooks on a loopback
socket, the real app serving a runtime the test built, synthetic passes started at the time of
the shared test clock (tests/clock.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from postpilot.api.app import create_app
from postpilot.runtime import ServiceRuntime
from postpilot.scheduler.summary import PassReport
from tests.clock import Clock
from tests.helpers import TEST_CRON_SECRET, serving

OPERATOR = {"Authorization": f"Bearer {TEST_CRON_SECRET}"}
WEBHOOK_SECRET = "webhook-secret-0123456789"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A webhook receiver on a real loopback socket: records every request, answers
    `fail_status` to the first `fail_first` of them, optionally after `delay` seconds."""

    fail_first: int = 0
    fail_status: int = 503
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        status = self.fail_status if len(self.received) < self.fail_first else 200
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(headers, b"".join(chunks), status))
        if self.delay:  # the fault under test: a receiver this slow to answer
            await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.status == 200]


@contextlib.asynccontextmanager
async def receiver(**options: Any) -> AsyncIterator[Receiver]:
    hook = Receiver(**options)
    async with serving(_no_lifespan(hook)) as url:
        hook.url = f"{url}/hook"
        yield hook


def _no_lifespan(hook: Receiver) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await hook(scope, receive, send)

    return app


@contextlib.asynccontextmanager
async def api_for(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over HTTP, on a runtime the test built (its clock, its settings)."""
    async with (
        serving(create_app(runtime.settings, runtime=runtime)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


def synthetic_pass(clock: Clock, scheduler: str = "optimized", **figures: Any) -> PassReport:
    """A pass report with the given figures, started now by `clock`."""
    report = PassReport(
        pass_id=str(uuid.uuid4()),
        scheduler=scheduler,
        started_at=clock(),
        limit=figures.pop("limit", 20),
        concurrency=figures.pop("concurrency", 5),
    )
    for name, value in figures.items():
        assert hasattr(report, name), name
        setattr(report, name, value)
    return report
