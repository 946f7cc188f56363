"""Request and response bodies, named by role (Create, Update, Public)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from postpilot.api.fields import Count, Id, JsonObject, Moment, Name, Text, Url, ZoneName
from postpilot.core import knobs
from postpilot.core.timezones import Dst
from postpilot.publishers import catalog, urls


def http_url(value: str | None) -> str | None:
    """A server URL in one spelling, or a ValueError saying what is wrong with it."""
    if value is None:
        return None
    try:
        return urls.account_base_url(value)
    except urls.UnusableUrl as exc:
        raise ValueError(f"{exc}: give an http(s) URL such as https://mastodon.social") from None


DST_HELP = (
    "Only for a local `scheduled_at` that a DST change makes missing (a gap) or happen twice "
    "(an overlap): 'earlier' or 'later' of its two possible instants. Without it such a time "
    "is refused (422) with both instants named."
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ACCOUNT_FIELDS_HELP = (
    "`credentials` and `options` hold the platform's fields and no others; required ones "
    "(bold) must not be empty, and where there are several ways to sign in one complete set "
    "of credentials is needed. Otherwise a 422 names each missing or unknown field. "
    "`GET /api/platforms` describes every field.\n\n" + catalog.table()
)


class AccountCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"description": ACCOUNT_FIELDS_HELP})

    platform: Name = Field(description="One of the supported platforms, e.g. 'mastodon'.")
    handle: Annotated[str, Field(min_length=1, max_length=200)]
    base_url: Annotated[str | None, Field(max_length=500)] = Field(
        default=None,
        description="The platform's server: required for Mastodon (the instance); elsewhere "
        "it replaces the platform's default (a Matrix homeserver, a sandbox).",
    )
    options: JsonObject = Field(
        default_factory=dict,
        description="The platform's non-secret settings (at most 16 KiB as JSON).",
    )
    credentials: JsonObject = Field(
        description="The platform's tokens and secrets (at most 16 KiB as JSON). Write-only: "
        "encrypted at rest, never returned."
    )
    token_expires_at: Moment | None = None
    verify: bool = Field(
        default=True,
        description='Check the credentials live with the platform\'s "who am I" before the '
        "account exists (422 naming the field it refused). `false` only for imports and "
        "migrations of accounts known to work; the activity entry says it was not checked.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)


class AccountUpdate(Strict):
    """Only the fields sent change. `options` and `credentials` replace the stored ones whole
    and are checked against the platform's fields as on create (see `GET /api/platforms`)."""

    handle: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    base_url: Annotated[str | None, Field(max_length=500)] = None
    options: JsonObject | None = None
    credentials: JsonObject | None = None
    token_expires_at: Moment | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)


class AccountPublic(BaseModel):
    id: str
    platform: str
    handle: str
    platform_id: str | None = Field(
        default=None,
        description="The platform's stable id of what the account posts as (user id, DID, "
        "Page id, author URN, chat id...), set when the account was connected and verified.",
    )
    base_url: str | None
    options: dict[str, Any]
    status: str
    status_reason: str | None
    token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AccountFieldPublic(BaseModel):
    name: str
    description: str
    required: bool = Field(description="Every account of the platform needs it, not empty.")
    secret: bool = Field(
        description="A value to mask where people see it (every credential is encrypted at "
        "rest and never returned)."
    )


class PlatformPublic(BaseModel):
    """What an account of one platform holds."""

    platform: str
    base_url_required: bool
    base_url: str = Field(description="What `base_url` is for on this platform.")
    credentials: list[AccountFieldPublic]
    options: list[AccountFieldPublic]
    credential_sets: list[list[str]] = Field(
        description="Where there are several ways to sign in: the account holds every "
        "credential of at least one set."
    )


MEDIA_IDS_HELP = (
    "Media library ids (see /api/media), this workspace's only; published after media_urls."
)


def unique_media_ids(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists the same media more than once")
    return value


ACCOUNT_OVERRIDES_HELP = (
    "account id -> {text, media_ids?}: used for that account instead of `overrides` and "
    "`text`; `media_ids`, when given, replaces the post's media there. Each account must be "
    "a target; the text is checked against its platform's limits."
)


class AccountVariant(Strict):
    """One account's own version of a post."""

    text: Text
    media_ids: Annotated[list[Id] | None, Field(max_length=10)] = Field(
        default=None, description=MEDIA_IDS_HELP
    )

    _unique_media = field_validator("media_ids")(unique_media_ids)


AccountOverrides = Annotated[dict[Id, AccountVariant], Field(max_length=100)]


class ThreadPart(Strict):
    """One reply of a thread, after the post's own text."""

    text: Text
    media_urls: Annotated[list[Url], Field(max_length=10)] = Field(default_factory=list)
    media_ids: Annotated[list[Id], Field(max_length=10)] = Field(
        default_factory=list, description=MEDIA_IDS_HELP
    )

    _unique_media = field_validator("media_ids")(unique_media_ids)


THREAD_HELP = (
    "Replies published after the post on X, Bluesky, Mastodon and Threads, each replying to "
    "the one before; each part is sent once, and a retry resumes at the first part not sent."
)
FIRST_COMMENT_HELP = (
    "A comment published on the post once it is up, on Instagram, LinkedIn and Facebook."
)


class PostCreate(Strict):
    text: Text = ""
    media_urls: Annotated[list[Url], Field(max_length=10)] = Field(default_factory=list)
    media_ids: Annotated[list[Id], Field(max_length=10)] = Field(
        default_factory=list, description=MEDIA_IDS_HELP
    )
    overrides: Annotated[dict[Name, Text], Field(max_length=20)] = Field(
        default_factory=dict, description="platform -> text used instead of `text` there."
    )
    targets: Annotated[list[Id], Field(min_length=1, max_length=100)] = Field(
        description="Account ids to publish to."
    )
    scheduled_at: Moment | None = Field(
        default=None,
        description="When to publish. Without an offset it is local time in `timezone`. "
        "Omit to publish as soon as possible.",
    )
    timezone: ZoneName = Field(default="UTC", description="IANA time zone, e.g. 'Europe/Paris'.")
    dst: Dst | None = Field(default=None, description=DST_HELP)
    account_overrides: AccountOverrides = Field(
        default_factory=dict, description=ACCOUNT_OVERRIDES_HELP
    )
    thread: Annotated[list[ThreadPart], Field(max_length=25)] = Field(
        default_factory=list, description=THREAD_HELP
    )
    first_comment: Text | None = Field(default=None, description=FIRST_COMMENT_HELP)
    queue_id: Id | None = Field(
        default=None,
        description="Add to this queue: the post takes its next free slot (leave out "
        "`scheduled_at`); the targets must be accounts the queue serves.",
    )

    @field_validator("targets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists the same account more than once")
        return value

    _unique_media = field_validator("media_ids")(unique_media_ids)


class PostUpdate(Strict):
    text: Text | None = None
    media_urls: Annotated[list[Url] | None, Field(max_length=10)] = None
    media_ids: Annotated[list[Id] | None, Field(max_length=10)] = Field(
        default=None, description=MEDIA_IDS_HELP
    )
    overrides: Annotated[dict[Name, Text] | None, Field(max_length=20)] = None
    targets: Annotated[list[Id] | None, Field(min_length=1, max_length=100)] = None
    scheduled_at: Moment | None = None
    timezone: ZoneName | None = None
    dst: Dst | None = Field(default=None, description=DST_HELP)
    account_overrides: AccountOverrides | None = Field(
        default=None, description=ACCOUNT_OVERRIDES_HELP
    )

    _unique_media = field_validator("media_ids")(unique_media_ids)


class ThreadPartPublic(BaseModel):
    text: str
    media_urls: list[str]
    media_ids: list[str]


class PartPublic(BaseModel):
    """A part of a delivery that was sent: 0 is the post, then its replies or first comment."""

    index: int
    status: str
    platform_post_id: str
    url: str | None
    sent_at: datetime


class DeliveryPublic(BaseModel):
    id: str
    post_id: str
    account_id: str
    platform: str
    handle: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    platform_post_id: str | None
    platform_url: str | None
    last_error: str | None
    published_at: datetime | None
    # A thread's or first comment's parts sent so far (GET /api/posts/{id}).
    parts: list[PartPublic] = Field(default_factory=list)


class PostPublic(BaseModel):
    id: str
    status: str
    text: str
    media_urls: list[str]
    media_ids: list[str]
    overrides: dict[str, str]
    account_overrides: dict[str, AccountVariant] = Field(default_factory=dict)
    thread: list[ThreadPartPublic] = Field(default_factory=list)
    first_comment: str | None = None
    scheduled_at: datetime
    scheduled_at_local: datetime
    timezone: str
    targets: list[DeliveryPublic]
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None


class PostPage(BaseModel):
    items: list[PostPublic]
    total: int
    limit: int
    offset: int


class ActivityPublic(BaseModel):
    id: int
    at: datetime
    event: str
    detail: str
    actor: str
    delivery_id: str | None
    pass_id: str | None


class CancelResult(BaseModel):
    post: PostPublic
    still_publishing: list[str] = Field(
        description="Deliveries already handed to the platform: they cannot be stopped."
    )


class ResolveDelivery(Strict):
    resolution: Literal["published", "retry", "failed"]
    platform_post_id: Annotated[str | None, Field(max_length=500)] = None
    platform_url: Url | None = None
    note: Annotated[str | None, Field(max_length=1000)] = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="Each check: 'ok' or what is wrong.")
    info: dict[str, Any]


class PassRequest(Strict):
    limit: Annotated[Count, knobs.BATCH_SIZE.bounds] | None = Field(
        None, description=knobs.BATCH_SIZE.help
    )
    concurrency: Annotated[Count, knobs.CONCURRENCY.bounds] | None = Field(
        None, description=knobs.CONCURRENCY.help
    )


class PassSummary(BaseModel):
    pass_id: str
    scheduler: str
    claimed: int
    published: int
    failed: int
    retried: int
    rate_limited: int
    unknown: int
    released: int
    lost_lease: int
    duration_ms: float
    db_statements: int


class ApiKeyCreate(Strict):
    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="A label people recognise, e.g. 'ci' or 'zapier'.",
    )


class ApiKeyPublic(BaseModel):
    """An API key as listed: never its secret nor the secret's hash."""

    id: str
    name: str
    prefix: str = Field(description="The secret's first characters, to recognise it.")
    active: bool
    created_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None


class WorkspaceActivity(ActivityPublic):
    post_id: str | None = Field(description="None for a change to an account or an API key.")


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself. Shown only in this answer: keep it.")
    replaces: str | None = Field(default=None, description="The key a rotation revoked.")


class ReconcileSummary(BaseModel):
    """What one look at the `unknown` deliveries settled."""

    looked: int
    published: int  # found on the platform
    retried: int  # provably not there: published again
    undecided: int  # the platform could not tell: looked up again later


# --- connecting accounts -------------------------------------------------------------------

InputValue = Annotated[str, Field(max_length=2000)]
Inputs = Annotated[dict[Name, InputValue], Field(max_length=20)]


def success_url(value: str | None) -> str | None:
    """Where the person's browser goes after the callback: an absolute http(s) URL."""
    if value is None:
        return None
    try:
        urls.parse_http_url(value)
    except urls.UnusableUrl as exc:
        raise ValueError(f"{exc}: give an absolute http(s) URL of your app") from None
    return value


class ConnectStart(Strict):
    method: Literal["oauth", "direct"] = Field(
        default="oauth",
        description="`oauth`: the platform's consent page, then our callback. `direct`: what "
        "the platform issued to the person (app password, bot token, webhook URL).",
    )
    inputs: Inputs = Field(
        default_factory=dict,
        description="What the platform's flow asks for (`GET /api/connect` lists them): the "
        "Mastodon instance, the Bluesky handle and app password, ... Secret ones are never "
        "stored.",
    )
    success_url: Annotated[str | None, Field(max_length=2000)] = Field(
        default=None,
        description="Where the callback sends the browser (303), with `account_id`, or "
        "`flow_id` and `status=choosing`, or `error` and `message` in the query. Without it "
        "the callback answers JSON.",
    )

    @field_validator("success_url")
    @classmethod
    def _success_url(cls, value: str | None) -> str | None:
        return success_url(value)


class ReconnectStart(Strict):
    """Connect the same account again, through its platform's flow; its id, posts and history
    stay. A Mastodon or Matrix reconnect uses the account's server unless inputs name one."""

    method: Literal["oauth", "direct"] | None = Field(
        default=None, description="Default: the platform's consent page where it has one."
    )
    inputs: Inputs = Field(default_factory=dict)
    success_url: Annotated[str | None, Field(max_length=2000)] = None

    @field_validator("success_url")
    @classmethod
    def _success_url(cls, value: str | None) -> str | None:
        return success_url(value)


class ConnectChoose(Strict):
    platform_ids: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=100)]


class ConnectInputPublic(BaseModel):
    name: str
    description: str
    secret: bool
    required: bool


class ConnectPlatformPublic(BaseModel):
    """How accounts of one platform are connected."""

    platform: str
    methods: list[str]
    start_inputs: list[ConnectInputPublic] = Field(description="For `oauth`.")
    direct_inputs: list[ConnectInputPublic] = Field(description="For `direct`.")
    configured: bool = Field(
        description="The deployment's app at this platform is set (or none is needed)."
    )
    scopes: list[str]
    redirect_uri: str = Field(description="The callback URL to register with the platform.")


class ConnectChoicePublic(BaseModel):
    platform_id: str
    name: str
    handle: str


class ConnectResult(BaseModel):
    """Where a connect flow stands. `authorize`: send the person to `authorize_url`. `done`:
    `accounts` are connected (connecting an account the workspace already has, by the
    platform's id, updates it instead of adding a second one). `choosing`: the login reaches
    several pages, channels or rooms; pick with `POST /api/connect/flows/{id}/choose`.
    `failed`: `error` and `message` say why."""

    flow_id: str | None
    status: Literal["authorize", "pending", "choosing", "done", "failed"]
    authorize_url: str | None = None
    expires_at: datetime | None = None
    account: AccountPublic | None = Field(default=None, description="The first of `accounts`.")
    accounts: list[AccountPublic] = Field(default_factory=list)
    choices: list[ConnectChoicePublic] = Field(default_factory=list)
    retryable_delivery_ids: list[str] = Field(
        default_factory=list,
        description="After a reconnect: the account's deliveries that failed because its token "
        "was refused (`POST /api/accounts/{id}/retry-failed` queues them again).",
    )
    error: str | None = None
    message: str | None = None


class AccountCheck(BaseModel):
    ok: bool
    message: str
    account: AccountPublic


class RetriedDeliveries(BaseModel):
    retried: list[str]
