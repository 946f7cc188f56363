"""Delivery events for users' own tools: one message per delivery that a pass published, failed
or marked unknown, built from the pass report's decisions (what was actually written) with the
one definition of the payload (`core.events`), as the pass wrote them into the outbox. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from postpilot.core.events import Message
from postpilot.scheduler.summary import events_of

if TYPE_CHECKING:
    from postpilot.scheduler.summary import PassReport


def delivery_events(report: PassReport) -> Mapping[str, Message]:
    """By delivery id; each payload is built when it is read."""
    return events_of(report.decisions, pass_id=report.pass_id, scheduler=report.scheduler)
