"""Bodies of /api/queues and /api/recurrences, named by role (Create, Update, Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from postpilot.api.fields import Id, Moment, Name, Text, Url, ZoneName
from postpilot.api.schemas import MEDIA_IDS_HELP, unique_media_ids
from postpilot.core.queue_slots import MAX_SLOTS
from postpilot.store.recurrence import MAX_LATE


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotBody(Strict):
    day: Annotated[int, Field(ge=0, le=6, strict=True)] = Field(
        description="Day of the week: 0 Monday .. 6 Sunday."
    )
    time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = Field(
        description='Local time "HH:MM" (24-hour) in the queue\'s time zone.'
    )


Slots = Annotated[list[SlotBody], Field(min_length=1, max_length=MAX_SLOTS)]
Accounts = Annotated[list[Id], Field(min_length=1, max_length=100)]


def _unique(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists the same account more than once")
    return value


class QueueCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: ZoneName = Field(description="IANA time zone the slots are in.")
    slots: Slots = Field(description="Weekly slots; posts added take the next free one.")
    accounts: Accounts = Field(description="Account ids whose posts this queue times.")
    paused: bool = False

    _unique_accounts = field_validator("accounts")(_unique)


class QueueUpdate(Strict):
    """Only the fields sent change; the waiting posts are re-timed at once."""

    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    timezone: ZoneName | None = None
    slots: Slots | None = None
    accounts: Accounts | None = None
    paused: bool | None = None

    _unique_accounts = field_validator("accounts")(_unique)


class QueuePublic(BaseModel):
    id: str
    name: str
    timezone: str
    slots: list[SlotBody]
    accounts: list[str]
    paused: bool
    created_at: datetime
    updated_at: datetime


class QueueAdd(Strict):
    post_id: Id
    evergreen_gap_hours: Annotated[int | None, Field(ge=1, le=24 * 365, strict=True)] = Field(
        default=None,
        description="Evergreen: once published, the post comes back to the end of the queue, "
        "taking no slot sooner than this many hours after it went out.",
    )
    variants: Annotated[list[Text], Field(max_length=20)] = Field(
        default_factory=list,
        description="Evergreen: texts each comeback uses in turn (the post's own text joins "
        "the cycle).",
    )


class QueueOrder(Strict):
    post_ids: Annotated[list[Id], Field(max_length=10_000)] = Field(
        description="Every waiting post of the queue, each once, in the new order."
    )


class QueuedPostPublic(BaseModel):
    post_id: str
    position: int
    waiting: bool = Field(
        description="Still in the order: nothing of it has started and its slot has not "
        "come; false once its slot came (it keeps it), publishing began or it was cancelled."
    )
    scheduled_at: datetime
    scheduled_at_local: datetime
    text: str
    evergreen_gap_hours: int | None


class RecurrenceCreate(Strict):
    rrule: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="One RFC 5545 RRULE, e.g. 'FREQ=DAILY;COUNT=30' or "
        "'FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20271231T235959Z'. It must end (UNTIL or COUNT); "
        "FREQ is HOURLY or coarser."
    )
    starts_at: Moment = Field(
        description="The first occurrence, as local time in `timezone` (no offset): later "
        "ones keep its wall-clock time across DST changes."
    )
    timezone: ZoneName = "UTC"
    text: Text = ""
    media_urls: Annotated[list[Url], Field(max_length=10)] = Field(default_factory=list)
    media_ids: Annotated[list[Id], Field(max_length=10)] = Field(
        default_factory=list,
        description=f"{MEDIA_IDS_HELP} Each occurrence uses them; they cannot be deleted while "
        "the recurrence exists.",
    )
    overrides: Annotated[dict[Name, Text], Field(max_length=20)] = Field(default_factory=dict)
    targets: Accounts

    _unique_targets = field_validator("targets")(_unique)
    _unique_media = field_validator("media_ids")(unique_media_ids)


class RecurrenceUpdate(Strict):
    paused: bool = Field(
        description="Pausing cancels the occurrences made ahead that have not started; "
        "resuming makes the window's occurrences again."
    )


class OccurrencePublic(BaseModel):
    occurrence_at: datetime
    post_id: str
    late_seconds: int | None = Field(
        description=f"Made after its time, as no worker ran then (at most {MAX_LATE} late): by "
        "how many seconds; published at once. Null when made ahead."
    )


class RecurrencePublic(BaseModel):
    id: str
    rrule: str = Field(description="As stored: an UNTIL given in UTC is shown as local time.")
    starts_at_local: str
    timezone: str
    text: str
    media_urls: list[str]
    media_ids: list[str]
    overrides: dict[str, str]
    targets: list[str]
    paused: bool
    occurrences: list[OccurrencePublic] = Field(
        description="Occurrences made into posts so far (a window ahead is made at a time)."
    )
    created_at: datetime
    updated_at: datetime


class PlanSummary(BaseModel):
    occurrences_made: int = Field(description="Occurrences of recurring posts made into posts.")
    evergreen_requeued: int = Field(description="Evergreen posts brought back to their queue.")
