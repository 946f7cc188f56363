"""The deployment's app at each platform: from the settings, the sandbox's own app when only a
sandbox is configured, or (Mastodon) registered per instance and kept in `connect_apps`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from postpilot.connect.base import App, AppNotConfigured
from postpilot.settings import Settings

# What the sandbox calls the app it lends a deployment that registered none of its own.
SANDBOX_CLIENT_ID = "postpilot-sandbox"
SANDBOX_CLIENT_SECRET = "postpilot-sandbox-secret"


@dataclass(frozen=True, slots=True)
class AppSettings:
    name: str  # the platform as people write it
    client_id: str  # setting names
    client_secret: str
    secret_required: bool = True


APP_SETTINGS: Mapping[str, AppSettings] = {
    # X also has public clients (PKCE, no secret); the publisher refreshes with either.
    "x": AppSettings("X", "CONNECT_X_CLIENT_ID", "CONNECT_X_CLIENT_SECRET", False),
    "linkedin": AppSettings(
        "LinkedIn", "CONNECT_LINKEDIN_CLIENT_ID", "CONNECT_LINKEDIN_CLIENT_SECRET"
    ),
    "facebook": AppSettings("Facebook", "CONNECT_FACEBOOK_APP_ID", "CONNECT_FACEBOOK_APP_SECRET"),
    # Instagram business accounts are reached through the Meta app's Facebook Login.
    "instagram": AppSettings("Instagram", "CONNECT_FACEBOOK_APP_ID", "CONNECT_FACEBOOK_APP_SECRET"),
    "threads": AppSettings("Threads", "CONNECT_THREADS_APP_ID", "CONNECT_THREADS_APP_SECRET"),
    "discord": AppSettings("Discord", "CONNECT_DISCORD_CLIENT_ID", "CONNECT_DISCORD_CLIENT_SECRET"),
    "slack": AppSettings("Slack", "CONNECT_SLACK_CLIENT_ID", "CONNECT_SLACK_CLIENT_SECRET"),
}


# Platforms without a deployment-wide app, as people write them.
_OTHER_NAMES = {
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "telegram": "Telegram",
    "matrix": "Matrix",
}


def display_name(platform: str) -> str:
    known = APP_SETTINGS.get(platform)
    return known.name if known else _OTHER_NAMES.get(platform, platform)


def configured_app(settings: Settings, platform: str) -> App | None:
    """The app the settings name for `platform`, the sandbox's when only SANDBOX_URL is set,
    else None."""
    names = APP_SETTINGS.get(platform)
    if names is None:
        return None
    client_id = getattr(settings, names.client_id)
    secret = getattr(settings, names.client_secret)
    if client_id and (secret or not names.secret_required):
        return App(client_id=client_id, client_secret=secret)
    if settings.SANDBOX_URL and not client_id and not secret:
        return App(client_id=SANDBOX_CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET)
    return None


def required_app(settings: Settings, platform: str) -> App:
    """`configured_app`, or `AppNotConfigured` naming the settings to set."""
    app = configured_app(settings, platform)
    if app is not None:
        return app
    names = APP_SETTINGS[platform]
    raise AppNotConfigured(
        f"{platform}: set {names.client_id} and {names.client_secret} to connect "
        f"{names.name} accounts"
    )
