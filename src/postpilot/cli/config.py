"""`postpilot config show`: every setting's effective value and where it came from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from postpilot.cli import common, usage
from postpilot.settings import SECRET_NAMES, Settings, env_files

app = usage.group("The effective configuration.")

DEFAULT = "default"
ENVIRONMENT = "environment"
HIDDEN = "*** (set)"


@dataclass(frozen=True)
class Row:
    name: str
    value: str
    source: str


def rows(
    settings: Settings, *, environ: Mapping[str, str], files: Mapping[str, Mapping[str, str]]
) -> list[Row]:
    """One row per setting, secrets masked, with the source that won: the environment over the
    files, a later file over an earlier one, any of them over the default."""
    given = {name.upper() for name in environ}
    found = []
    for name in Settings.model_fields:
        source = DEFAULT
        if name in given:
            source = ENVIRONMENT
        else:
            for path, values in reversed(list(files.items())):
                if name in values:
                    source = path
                    break
        found.append(Row(name, shown(name, getattr(settings, name)), source))
    return found


def shown(name: str, value: object) -> str:
    """A value as printed: secrets as whether they are set; a secret URL without its password
    (and a webhook's without its path, the token), so the server is still seen."""
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if name not in SECRET_NAMES:
        return str(value)
    if name.endswith("_URL"):
        parts = urlsplit(str(value))
        if parts.scheme.startswith("sqlite"):
            return str(value)  # a file path, no credential in it
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return HIDDEN
        user = parts.username or ""
        user += ":***@" if parts.password else "@" if user else ""
        path = "/***" if "WEBHOOK" in name else parts.path  # query strings may hold passwords
        return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{path}"
    return HIDDEN


@app.command("show")
def show() -> None:
    """Print every setting, its value (secrets masked) and where it came from: default, .env,
    .env.local or the environment."""
    settings = common.settings()
    files = env_files()
    table = rows(settings, environ=os.environ, files=files)
    name_width = max(len(row.name) for row in table)
    value_width = max(len(row.value) for row in table)
    for row in table:
        common.console.print(
            f"{row.name:<{name_width}}  {row.value:<{value_width}}  {row.source}",
            highlight=False,
            markup=False,
        )
