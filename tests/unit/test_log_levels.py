"""What the logs say and at which level: JSON lines without uvicorn's coloured copy of a message
or any ANSI escape, each delivery's outcome at a level that matches whose problem it is, and a
stop that waits for publishes in flight reaching a console that shows only warnings."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from postpilot import logs
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event, Transition
from postpilot.scheduler import engine, passes
from postpilot.scheduler.lease import LeaseGuard
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport
from postpilot.store.work import ClaimedDelivery, Decision
from tests.mock_platform import NOW

ESC = "\x1b"


def uvicorn_record() -> logging.LogRecord:
    """What uvicorn logs when it starts: a plain message and a coloured copy of it."""
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Uvicorn running on %s", ("http://x",), None
    )
    record.color_message = f"Uvicorn running on {ESC}[1m%s{ESC}[0m"
    return record


def test_a_json_line_has_no_coloured_copy_and_no_escape_anywhere() -> None:
    record = uvicorn_record()
    record.msg = f"{ESC}[32mready{ESC}[0m on %s"
    record.detail = {"nested": [f"{ESC}[31mred{ESC}[0m"]}
    line = logs.JsonFormatter().format(record)
    entry = json.loads(line)
    assert "color_message" not in entry
    assert entry["message"] == "ready on http://x"
    assert entry["detail"] == {"nested": ["red"]}
    assert ESC not in line and "u001b" not in line


def test_a_typed_backslash_sequence_is_left_as_written() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, r"path C:\u001b[1m", None, None)
    assert json.loads(logs.JsonFormatter().format(record))["message"] == r"path C:\u001b[1m"


def test_a_text_line_has_no_coloured_copy() -> None:
    line = logs.TextFormatter().format(uvicorn_record())
    assert line == "info    uvicorn.error: Uvicorn running on http://x"


def processed(status: DeliveryStatus, event: Event, *, ours: bool = False) -> engine.Processed:
    delivery = ClaimedDelivery(
        id=f"dlv-{event.value}",
        workspace_id="ws-1",
        post_id="post-1",
        account_id="acct-1",
        platform="mastodon",
        attempts=0,
        scheduled_at=NOW,
        due_at=NOW,
        idempotency_key="key-1",
        recovered=False,
    )
    transition = Transition(
        status=status, attempts=1, due_at=NOW + timedelta(minutes=1), event=event, detail="why"
    )
    return engine.Processed(
        decision=Decision(delivery=delivery, transition=transition),
        outcome="test",
        duration_ms=1.0,
        ours=ours,
    )


@pytest.mark.parametrize(
    ("status", "event", "ours", "level"),
    [
        (DeliveryStatus.PUBLISHED, Event.PUBLISHED, False, logging.INFO),
        (DeliveryStatus.SCHEDULED, Event.RETRY_SCHEDULED, False, logging.INFO),
        (DeliveryStatus.SCHEDULED, Event.RATE_LIMITED, False, logging.INFO),
        (DeliveryStatus.FAILED, Event.FAILED, False, logging.WARNING),
        (DeliveryStatus.UNKNOWN, Event.UNKNOWN, False, logging.WARNING),
        (DeliveryStatus.FAILED, Event.FAILED, True, logging.ERROR),
        (DeliveryStatus.UNKNOWN, Event.UNKNOWN, True, logging.ERROR),
    ],
    ids=["published", "retried", "rate limited", "failed", "unknown", "ours", "ours, unknown"],
)
def test_each_outcome_is_logged_at_the_level_of_whose_problem_it_is(
    caplog: pytest.LogCaptureFixture, status: DeliveryStatus, event: Event, ours: bool, level: int
) -> None:
    report = PassReport(
        pass_id="p-1", scheduler="optimized", started_at=NOW, limit=1, concurrency=1
    )
    item = processed(status, event, ours=ours)
    with caplog.at_level(logging.DEBUG, logger="postpilot.scheduler.passes"):
        passes._tally(report, [item], {item.decision.delivery.id})
    (record,) = [r for r in caplog.records if r.getMessage() == f"delivery {event.value}"]
    assert record.levelno == level


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """The text console `configure` sets up, as the demo has it (warnings and above)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stderr", stream)
        logs.configure("WARNING", "text")
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


async def test_a_stop_with_publishes_in_flight_says_what_it_waits_for(
    console: io.StringIO,
) -> None:
    settings = SimpleNamespace(
        SCHEDULER_DELIVERY_TIMEOUT_SECONDS=30.0, WORKER_SHUTDOWN_GRACE_SECONDS=0.0
    )
    interrupter = passes._Interrupter(
        cast(Runtime, SimpleNamespace(settings=settings)), cast(LeaseGuard, None), None
    )
    publishing = asyncio.create_task(asyncio.Event().wait())
    interrupter._in_flight.update({publishing, asyncio.create_task(asyncio.Event().wait())})
    stop = asyncio.Event()
    stop.set()
    try:
        await interrupter._grace_over(stop)
    finally:
        for task in interrupter._in_flight:
            task.cancel()
    assert console.getvalue().strip() == (
        "warning postpilot.scheduler.passes: "
        "stopping: waiting at most 0 s for 2 publishes in flight"
    )
