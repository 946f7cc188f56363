"""Typed settings from the environment, `.env.local` and `.env` (in that order of precedence).

Only entry points (CLI, ASGI app factory) read them; everything else receives values.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from postpilot.core import knobs, proxies
from postpilot.errors import PostpilotError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./postpilot.db"
# host, host:port, IPv6, or [IPv6]:port
_HOST_ENTRY = re.compile(r"[\w.-]+(:\d{1,5})?|[0-9a-fA-F:]+|\[[0-9a-fA-F:.]+\](:\d{1,5})?")


# Each platform's app settings (id, secret) for connecting accounts: see connect/apps.py.
CONNECT_APP_SETTINGS = (
    "CONNECT_X_CLIENT_ID",
    "CONNECT_X_CLIENT_SECRET",
    "CONNECT_LINKEDIN_CLIENT_ID",
    "CONNECT_LINKEDIN_CLIENT_SECRET",
    "CONNECT_FACEBOOK_APP_ID",
    "CONNECT_FACEBOOK_APP_SECRET",
    "CONNECT_THREADS_APP_ID",
    "CONNECT_THREADS_APP_SECRET",
    "CONNECT_DISCORD_CLIENT_ID",
    "CONNECT_DISCORD_CLIENT_SECRET",
    "CONNECT_SLACK_CLIENT_ID",
    "CONNECT_SLACK_CLIENT_SECRET",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"),  # later files win
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    SCHEDULER_CONCURRENCY: Annotated[int, knobs.CONCURRENCY.bounds] = knobs.CONCURRENCY.default
    SCHEDULER_BATCH_SIZE: Annotated[int, knobs.BATCH_SIZE.bounds] = knobs.BATCH_SIZE.default
    SCHEDULER_CACHE_TTL: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    # A pass renews its lease every third of it, so a dead worker's deliveries are taken over
    # within this many seconds of its death.
    SCHEDULER_LEASE_SECONDS: Annotated[float, Field(ge=5, le=3600)] = 15.0
    # Longest one delivery (refresh, media, uploads, the publish) may take before it is stopped.
    SCHEDULER_DELIVERY_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=3600)] = 120.0
    # How long a pass keeps retrying to write its outcomes while the database is unreachable.
    SCHEDULER_WRITE_RETRY_SECONDS: Annotated[float, Field(ge=0, le=3600)] = 60.0
    # After SIGTERM, how long publishes already in flight may take before they are stopped.
    WORKER_SHUTDOWN_GRACE_SECONDS: Annotated[float, Field(ge=0, le=3600)] = 20.0
    SCHEDULER_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=100)] = 5
    SCHEDULER_RETRY_BASE_SECONDS: Annotated[float, Field(ge=0, le=3600)] = 30.0
    WORKER_POLL_SECONDS: Annotated[float, Field(gt=0, le=300)] = 1.0
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    DATABASE_MAX_CONNECTIONS: Annotated[int, Field(ge=1, le=1000)] = 20
    ENABLE_PERFORMANCE_MONITORING: bool = True
    REDIS_URL: str | None = None
    CRON_SECRET: str | None = None
    SECRET_KEY: str | None = None
    HTTP_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=300)] = 15.0
    MEDIA_MAX_BYTES: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    # The media library (uploads by file or URL). Default folder: next to a SQLite file, or
    # ~/.local/share/postpilot/media/<database>; every API process and worker must share it.
    MEDIA_DIR: str | None = None
    MEDIA_MAX_UPLOAD_BYTES: Annotated[int, Field(ge=1024, le=512 * 1024 * 1024)] = 20 * 1024 * 1024
    # Larger images are refused before they are decoded (a small file can hold a huge image).
    MEDIA_MAX_PIXELS: Annotated[int, Field(ge=1, le=500_000_000)] = 50_000_000
    # `postpilot media purge` removes media no post has used for this long (never media an
    # unfinished delivery needs).
    MEDIA_RETENTION_DAYS: Annotated[int, Field(ge=1, le=36_500)] = 30
    # Hosts (host, host:port or [v6]:port, comma-separated) that publishing and media fetching
    # may reach although they are not public addresses: a self-hosted instance on the private
    # network. SANDBOX_URL's host is allowed without being listed.
    PRIVATE_HOSTS_ALLOWED: str = ""
    # The older name of the same list, from when it covered media only; both are read.
    MEDIA_ALLOWED_HOSTS: str = ""
    # When set, every publisher talks to this sandbox instead of the real platform.
    SANDBOX_URL: str | None = None
    # Where passes journal which deliveries they began sending and outcomes the database did
    # not take. Default: next to a SQLite file, or ~/.local/state/postpilot/journal/<database>.
    JOURNAL_DIR: str | None = None
    # `unknown` deliveries on platforms we can read back are looked up this often, once no send
    # of theirs can still land (this long after they became unknown; >= the HTTP timeout).
    RECONCILE_INTERVAL_SECONDS: Annotated[float, Field(ge=1, le=86_400)] = 30.0
    RECONCILE_SETTLE_SECONDS: Annotated[float, Field(ge=0, le=86_400)] = 120.0
    # Meta does not document the Page post length limit: 63,206 is the commonly quoted one.
    FACEBOOK_MAX_TEXT: Annotated[int, Field(ge=1, le=1_000_000)] = 63_206
    # Largest request body the API reads (413 beyond it, counted as it streams in).
    API_MAX_BODY_BYTES: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # A CSV import of posts: most rows (422 beyond) and bytes (413 beyond) in one file.
    IMPORT_MAX_ROWS: Annotated[int, Field(ge=1, le=100_000)] = 5_000
    IMPORT_MAX_BYTES: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 5 * 1024 * 1024
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["json", "text"] = "json"
    # Monitor, cache and alerts.
    REDIS_KEY_PREFIX: Annotated[str, Field(min_length=1, max_length=100)] = "postpilot:"
    REDIS_RETRY_SECONDS: Annotated[float, Field(ge=1, le=3600)] = 30.0
    METRICS_RETENTION_DAYS: Annotated[int, Field(ge=1, le=3650)] = 14
    # The dashboard's hourly and 15-minute rollups of the passes: kept longer, a week at least.
    METRICS_ROLLUP_RETENTION_DAYS: Annotated[int, Field(ge=7, le=3650)] = 400
    METRICS_PUBLIC: bool = False
    WORKER_METRICS_PORT: Annotated[int | None, Field(ge=1, le=65535)] = None
    WORKER_METRICS_HOST: str = "127.0.0.1"
    # `postpilot worker` processes (each its own event loop and database pool); unset: one per
    # core. PostgreSQL only: SQLite has one writer, so a worker there runs one process.
    WORKER_PROCESSES: Annotated[int | None, Field(ge=1, le=256)] = None
    # A direct PostgreSQL connection for the worker's LISTEN when DATABASE_URL goes through a
    # pooler in transaction mode (`?pooler=transaction`), where LISTEN cannot work; unset there,
    # workers poll every WORKER_POLL_SECONDS instead of waking at once.
    DATABASE_LISTEN_URL: str | None = None
    # OTLP/HTTP collector base URL: traces are off unless it or OTEL_EXPORTER_OTLP_ENDPOINT is set.
    TRACING_OTLP_ENDPOINT: str | None = None
    HEALTH_HEARTBEAT_SECONDS: Annotated[float, Field(gt=0, le=86_400)] = 30.0
    # Cron-only deployments (no worker): readiness wants a cron pass within this many seconds.
    HEALTH_CRON_SECONDS: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    ALERT_EVALUATE_SECONDS: Annotated[float, Field(ge=0, le=86_400)] = 30.0
    ALERT_WINDOW_SECONDS: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    ALERT_MIN_DELIVERIES: Annotated[int, Field(ge=1)] = 20
    ALERT_ERROR_RATE: Annotated[float, Field(ge=0, le=1)] = 0.05
    ALERT_PROCESSING_SECONDS: Annotated[float, Field(gt=0)] = 5.0
    ALERT_DB_CONNECTIONS_RATIO: Annotated[float, Field(gt=0, le=1)] = 0.8
    ALERT_CACHE_HIT_RATE: Annotated[float, Field(ge=0, le=1)] = 0.7
    ALERT_CACHE_WARMUP_SECONDS: Annotated[float, Field(ge=0)] = 300.0
    ALERT_CACHE_MIN_LOOKUPS: Annotated[int, Field(ge=1)] = 50
    ALERT_OVERDUE_SECONDS: Annotated[float, Field(gt=0)] = 120.0
    ALERT_WEBHOOK_URL: str | None = None
    ALERT_WEBHOOK_SECRET: str | None = Field(default=None, validate_default=True)
    EVENTS_WEBHOOK_URL: str | None = None
    EVENTS_WEBHOOK_SECRET: str | None = Field(default=None, validate_default=True)
    WEBHOOK_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=20)] = 5
    WEBHOOK_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=300)] = 10.0
    WEBHOOK_QUEUE_SIZE: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # Workspaces' subscriptions (/api/webhooks), sent from the durable outbox: attempts per
    # event, the backoff between them, how often a process looks for due rows, and how many
    # rows one look takes.
    WEBHOOK_OUTBOX_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=50)] = 12
    WEBHOOK_RETRY_BASE_SECONDS: Annotated[float, Field(ge=0, le=3600)] = 5.0
    WEBHOOK_RETRY_MAX_SECONDS: Annotated[float, Field(ge=0, le=86_400)] = 3600.0
    WEBHOOK_OUTBOX_POLL_SECONDS: Annotated[float, Field(gt=0, le=3600)] = 2.0
    WEBHOOK_OUTBOX_BATCH: Annotated[int, Field(ge=1, le=1000)] = 50
    # Sent and failed events older than this leave the delivery log (pending ones never do).
    WEBHOOK_LOG_RETENTION_DAYS: Annotated[int, Field(ge=1, le=3650)] = 30
    # Connecting accounts. The public origin people's browsers reach the API at: every
    # platform's consent page sends them back to {PUBLIC_BASE_URL}/api/connect/callback, the one
    # redirect URI to register with each platform's app. Facebook, Instagram, Threads and Slack
    # download library media from signed links under it (media/links.py).
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    # The deployment's app at each platform (Mastodon registers one per instance by itself;
    # Bluesky, Telegram and Matrix need none). Meta's app serves Facebook and Instagram.
    CONNECT_X_CLIENT_ID: str | None = None
    CONNECT_X_CLIENT_SECRET: str | None = None
    CONNECT_LINKEDIN_CLIENT_ID: str | None = None
    CONNECT_LINKEDIN_CLIENT_SECRET: str | None = None
    CONNECT_FACEBOOK_APP_ID: str | None = None
    CONNECT_FACEBOOK_APP_SECRET: str | None = None
    CONNECT_THREADS_APP_ID: str | None = None
    CONNECT_THREADS_APP_SECRET: str | None = None
    CONNECT_DISCORD_CLIENT_ID: str | None = None
    CONNECT_DISCORD_CLIENT_SECRET: str | None = None
    CONNECT_SLACK_CLIENT_ID: str | None = None
    CONNECT_SLACK_CLIENT_SECRET: str | None = None
    # The web app (postpilot/web). Session cookies are Secure when this is true; unset: when
    # PUBLIC_BASE_URL is https (so http://127.0.0.1 development works without it).
    SESSION_COOKIE_SECURE: bool | None = None
    SESSION_LIFETIME_HOURS: Annotated[int, Field(ge=1, le=24 * 366)] = 14 * 24
    INVITATION_LIFETIME_HOURS: Annotated[int, Field(ge=1, le=24 * 90)] = 72
    # Failed sign-ins allowed per email (and per client address) within the window; counted in
    # the database, so the limit holds across processes.
    LOGIN_RATE_LIMIT: Annotated[int, Field(ge=1, le=10_000)] = 5
    LOGIN_RATE_LIMIT_PER_IP: Annotated[int, Field(ge=1, le=100_000)] = 50
    LOGIN_RATE_WINDOW_SECONDS: Annotated[int, Field(ge=1, le=86_400)] = 900
    # Reverse proxies (IP addresses or CIDR networks, comma-separated) whose X-Forwarded-For
    # names the client; empty: the connecting address is the client's (X-Forwarded-For ignored).
    TRUSTED_PROXIES: str = ""
    # Where scripts/setup installs the pages' front-end packages (htmx, Swagger UI, ReDoc);
    # unset: .web-assets beside the project's src/.
    WEB_ASSETS_DIR: str | None = None

    @field_validator(*CONNECT_APP_SETTINGS, mode="before")
    @classmethod
    def _empty_app_setting_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("PUBLIC_BASE_URL")
    @classmethod
    def _public_origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an http(s) origin such as https://postpilot.example.com")
        return value.rstrip("/")

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator(
        "CRON_SECRET",
        "SECRET_KEY",
        "REDIS_URL",
        "SANDBOX_URL",
        "WEB_ASSETS_DIR",
        "SESSION_COOKIE_SECURE",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("WORKER_PROCESSES", "DATABASE_LISTEN_URL", mode="before")
    @classmethod
    def _empty_worker_setting_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("DATABASE_LISTEN_URL")
    @classmethod
    def _listen_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalized = normalize_database_url(value)
        if not normalized.startswith("postgresql"):
            raise ValueError("must be a postgresql:// URL (a direct connection, not a pooler)")
        return normalized

    @field_validator("SANDBOX_URL")
    @classmethod
    def _sandbox_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parts = urlsplit(value)
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError as exc:
                raise ValueError(f"is not a valid URL ({exc})") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http(s) URL such as http://127.0.0.1:8765")
        return value

    @field_validator("SECRET_KEY")
    @classmethod
    def _strong_enough(cls, value: str | None) -> str | None:
        if value is not None and any(len(part.strip()) < 16 for part in value.split(",")):
            raise ValueError("each comma-separated key must be at least 16 characters")
        return value

    @field_validator(
        "ALERT_WEBHOOK_URL",
        "ALERT_WEBHOOK_SECRET",
        "EVENTS_WEBHOOK_URL",
        "EVENTS_WEBHOOK_SECRET",
        "WORKER_METRICS_PORT",
        mode="before",
    )
    @classmethod
    def _empty_monitor_setting_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("ALERT_WEBHOOK_URL", "EVENTS_WEBHOOK_URL")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("ALERT_WEBHOOK_SECRET", "EVENTS_WEBHOOK_SECRET")
    @classmethod
    def _webhook_is_signed(cls, value: str | None, info: ValidationInfo) -> str | None:
        url_field = str(info.field_name).replace("_SECRET", "_URL")
        if info.data.get(url_field) and len(value or "") < 16:
            raise ValueError(
                f"{url_field} is set: this secret must be set too (at least 16 characters), "
                "it signs every request"
            )
        return value

    @field_validator("PRIVATE_HOSTS_ALLOWED", "MEDIA_ALLOWED_HOSTS")
    @classmethod
    def _host_list(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            if not _HOST_ENTRY.fullmatch(entry):
                raise ValueError(f"{entry!r} is not a host, host:port or [IPv6]:port")
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _proxy_list(cls, value: str) -> str:
        proxies.parse_networks(value)
        return value

    @property
    def trusted_proxies(self) -> tuple[proxies.Network, ...]:
        return proxies.parse_networks(self.TRUSTED_PROXIES)

    @property
    def private_hosts_allowed(self) -> tuple[str, ...]:
        """Every host or host:port allowed although not public, SANDBOX_URL's included."""
        listed = f"{self.PRIVATE_HOSTS_ALLOWED},{self.MEDIA_ALLOWED_HOSTS}".split(",")
        entries = [e.strip() for e in listed if e.strip()]
        if self.SANDBOX_URL:  # the operator's own server, not tenant input
            sandbox = urlsplit(self.SANDBOX_URL)
            port = sandbox.port or (443 if sandbox.scheme == "https" else 80)
            host = sandbox.hostname or ""
            entries.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return tuple(entries)


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste and pick the async driver we ship."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url.removeprefix(prefix)
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError("must start with postgresql:// or sqlite:/// (e.g. sqlite:///./postpilot.db)")


# Never shown: they are, or may hold, a password or a token (a Slack or Discord webhook URL is
# itself the credential).
SECRET_NAMES = frozenset(
    {
        "SECRET_KEY",
        "CRON_SECRET",
        "DATABASE_URL",
        "DATABASE_LISTEN_URL",
        "REDIS_URL",
        "ALERT_WEBHOOK_URL",
        "ALERT_WEBHOOK_SECRET",
        "EVENTS_WEBHOOK_URL",
        "EVENTS_WEBHOOK_SECRET",
        *(name for name in CONNECT_APP_SETTINGS if name.endswith("_SECRET")),
    }
)


class SettingsError(PostpilotError):
    """Settings did not validate; the message names each variable and what it accepts."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            shown = "<hidden>" if name.upper() in SECRET_NAMES else repr(error.get("input"))
            lines.append(f"{name}: {message} (got {shown})")
        raise SettingsError("; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = load_settings()
    warn_misspelt()
    return settings


def env_files() -> dict[str, dict[str, str]]:
    """What each settings file that exists holds, names upper-cased, in order of precedence
    (lowest first, as Settings reads them)."""
    configured = Settings.model_config.get("env_file") or ()
    names = [configured] if isinstance(configured, str | Path) else list(configured)
    files = {}
    for name in names:
        path = Path(name)
        if path.is_file():
            values = dotenv_values(path, encoding="utf-8")
            files[str(name)] = {k.upper(): v or "" for k, v in values.items()}
    return files


# How close a name must be to a setting's to be taken for a misspelling of it (difflib's ratio):
# SCHEDULER_CONCURENCY is 0.98 from SCHEDULER_CONCURRENCY, REDIS_HOST 0.74 from REDIS_URL.
_MISSPELT_RATIO = 0.85


def misspelt(names: Iterable[str]) -> dict[str, str]:
    """Each name that is not a setting but close to one, with the setting it likely means."""
    known = list(Settings.model_fields)
    found = {}
    for name in sorted({n.upper() for n in names} - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=_MISSPELT_RATIO)
        if close:
            found[name] = close[0]
    return found


_warned: set[str] = set()


def warn_misspelt(environ: Mapping[str, str] = os.environ) -> None:
    """Log a warning for each misspelt name in the environment or the settings files, once per
    process: an ignored variable otherwise looks like a setting that does nothing."""
    names = set(environ)
    for values in env_files().values():
        names.update(values)
    for name, meant in misspelt(names).items():
        if name not in _warned:
            _warned.add(name)
            logging.getLogger(__name__).warning(
                "%s is not a setting and is ignored: did you mean %s?", name, meant
            )
