"""Bodies of /api/webhooks: a subscription (its secret is write-only: shown once, when it was
generated or set) and its delivery log, in pages of {"items", "next_cursor"}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from postpilot.api.schemas import Strict
from postpilot.core.events import EVENT_TYPES

EVENT_NAMES = tuple(sorted(EVENT_TYPES.values()))
ALL_EVENTS = "*"

Secret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="16 to 200 printable characters without spaces.",
    ),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        description="http(s) URL of a public address (no query, no fragment): events are "
        "POSTed to it.",
    ),
]


def known_events(value: list[str]) -> list[str]:
    unknown = [name for name in value if name != ALL_EVENTS and name not in EVENT_NAMES]
    if unknown:
        raise ValueError(
            f"unknown event {', '.join(unknown)}: use {', '.join(EVENT_NAMES)} or {ALL_EVENTS}"
        )
    return [ALL_EVENTS] if ALL_EVENTS in value else sorted(set(value))


Events = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=len(EVENT_NAMES) + 1,
        description=f"Event names ({', '.join(EVENT_NAMES)}), or `*` for every event.",
    ),
    AfterValidator(known_events),
]
Description = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class WebhookCreate(Strict):
    url: WebhookUrl
    events: Events = Field(default_factory=lambda: [ALL_EVENTS])
    secret: Secret | None = Field(
        default=None,
        description="Signs every request (X-Postpilot-Signature). Generated when not given; "
        "either way it is shown only in this answer.",
    )
    enabled: bool = True
    description: Description = ""


class WebhookUpdate(Strict):
    url: WebhookUrl | None = None
    events: Events | None = None
    secret: Secret | None = Field(default=None, description="A new signing secret.")
    enabled: bool | None = None
    description: Description | None = None


class WebhookPublic(BaseModel):
    """A subscription as listed: never its secret."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret. Shown only in this answer: keep it.")


class WebhookPage(BaseModel):
    items: list[WebhookPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None: last.")


class WebhookDeliveryPublic(BaseModel):
    """One event for one subscription, as the outbox holds it."""

    id: str
    event_id: str = Field(description="X-Postpilot-Id: the same on every attempt.")
    event: str
    status: str = Field(description="pending, sent or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is tried next, if pending.")
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    payload: dict[str, Any]


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None: last.")
