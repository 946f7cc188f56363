"""What users' tools hear of: a signed message, and the one definition of a delivery event (a
delivery published, failed or marked unknown) built from the decision that was written. Pure:
the store writes these into the webhook outbox in the transaction of the outcome they announce,
and the monitor hands the same messages to the operator's in-memory webhook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Transition

EVENT_TYPES: dict[DeliveryStatus, str] = {
    DeliveryStatus.PUBLISHED: "delivery.published",
    DeliveryStatus.FAILED: "delivery.failed",
    DeliveryStatus.UNKNOWN: "delivery.unknown",
}


@dataclass(frozen=True, slots=True)
class Message:
    kind: str  # the event name, e.g. "alert.firing"
    id: str
    payload: dict[str, Any]

    def body(self) -> bytes:
        return json.dumps(self.payload, default=str, separators=(",", ":")).encode()

    @property
    def workspace_id(self) -> str:
        """The workspace the event belongs to ("" for the operator's own events)."""
        return str(self.payload.get("data", {}).get("workspace_id", ""))


class EventSubject(Protocol):
    """The delivery an event is about, as a claimed delivery carries it."""

    @property
    def id(self) -> str: ...
    @property
    def post_id(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def scheduled_at(self) -> datetime: ...


def delivery_event(
    delivery: EventSubject, transition: Transition, *, pass_id: str, scheduler: str
) -> Message | None:
    """The event a written transition means, or None when it means none (a retry, a delay)."""
    kind = EVENT_TYPES.get(transition.status)
    if kind is None:
        return None
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
        "published_at": transition.published_at.isoformat() if transition.published_at else None,
        "platform_post_id": transition.platform_post_id,
        "platform_url": transition.platform_url,
        "error": transition.error,
        "detail": transition.detail,
        "pass_id": pass_id,
        "scheduler": scheduler,
    }
    return Message(kind, message_id, {"id": message_id, "type": kind, "data": data})
