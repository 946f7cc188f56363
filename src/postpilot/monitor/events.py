"""Delivery events for users' own tools: one message per delivery that a pass published, failed
or marked unknown, built from the pass report's decisions (what was actually written). Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postpilot.core.states import DeliveryStatus
from postpilot.monitor.webhooks import Message

if TYPE_CHECKING:
    from postpilot.scheduler.summary import PassReport

EVENT_TYPES: dict[DeliveryStatus, str] = {
    DeliveryStatus.PUBLISHED: "delivery.published",
    DeliveryStatus.FAILED: "delivery.failed",
    DeliveryStatus.UNKNOWN: "delivery.unknown",
}


def delivery_events(report: PassReport) -> list[Message]:
    messages = []
    for decision in report.decisions:
        transition, delivery = decision.transition, decision.delivery
        kind = EVENT_TYPES.get(transition.status)
        if kind is None:
            continue
        # Stable per outcome: a receiver that sees the same id twice has seen the same event.
        message_id = f"{delivery.id}:{transition.status.value}:{transition.attempts}"
        data: dict[str, Any] = {
            "delivery_id": delivery.id,
            "post_id": delivery.post_id,
            "workspace_id": delivery.workspace_id,
            "account_id": delivery.account_id,
            "platform": delivery.platform,
            "status": transition.status.value,
            "attempts": transition.attempts,
            "scheduled_at": delivery.scheduled_at.isoformat(),
            "published_at": (
                transition.published_at.isoformat() if transition.published_at else None
            ),
            "platform_post_id": transition.platform_post_id,
            "platform_url": transition.platform_url,
            "error": transition.error,
            "detail": transition.detail,
            "pass_id": report.pass_id,
            "scheduler": report.scheduler,
        }
        messages.append(Message(kind, message_id, {"id": message_id, "type": kind, "data": data}))
    return messages
