"""Every line logged during a pass carries its pass_id, and every line logged while a delivery is
processed (down in a publisher, too) carries its delivery_id, under both schedulers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from postpilot import logs
from postpilot.publishers.base import PublishContext, PublishRequest
from postpilot.publishers.registry import PUBLISHERS
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The production formatter and filter on a handler of the `postpilot` logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("postpilot")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_pass_lines_carry_pass_and_delivery_ids(
    sqlite_db: Database,
    sandbox: SandboxClient,
    json_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    scheduler: str,
) -> None:
    publisher = PUBLISHERS["mastodon"]
    original = publisher.publish
    inner = logging.getLogger("postpilot.publishers.probe")

    async def publish(request: PublishRequest, ctx: PublishContext) -> Any:
        inner.warning("inside the publisher")  # no extra=: the context must supply the ids
        return await original(request, ctx)

    monkeypatch.setattr(publisher, "publish", publish)
    runtime = build_runtime(make_settings(sqlite_db, sandbox), db=sqlite_db)
    try:
        workspace, accounts = await workspace_with_accounts(sqlite_db, sandbox, count=3)
        await due_posts(sqlite_db, workspace, accounts, count=1, at=runtime.now())
        report = await run_pass(runtime, scheduler=scheduler)
        assert report.published == 3
    finally:
        await runtime.close()
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    probes = [line for line in lines if line["message"] == "inside the publisher"]
    assert len(probes) == 3
    assert {line["pass_id"] for line in probes} == {report.pass_id}
    assert len({line["delivery_id"] for line in probes}) == 3
    during = [line for line in lines if line["logger"].startswith("postpilot.scheduler")]
    assert during and all(line["pass_id"] == report.pass_id for line in during)
    published = [line for line in lines if line["message"] == "delivery published"]
    assert {line["delivery_id"] for line in published} == {line["delivery_id"] for line in probes}


def test_explicit_extra_wins_over_the_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("postpilot.test.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with logs.context(pass_id="p1"), logs.context(delivery_id="d1"):
            logger.info("one")
            logger.info("two", extra={"delivery_id": "d2"})
        logger.info("three")
    finally:
        logger.removeHandler(handler)
    one, two, three = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (one["pass_id"], one["delivery_id"]) == ("p1", "d1")
    assert (two["pass_id"], two["delivery_id"]) == ("p1", "d2")
    assert "pass_id" not in three and "delivery_id" not in three
