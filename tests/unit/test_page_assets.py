"""The pages' own scripts and templates call the API at its /api/v1 paths, never at the
deprecated /api aliases (api/versions.py says which paths are deprecated)."""

from __future__ import annotations

import re
from pathlib import Path

from postpilot.api import versions

WEB = Path(__file__).resolve().parents[2] / "src" / "postpilot" / "web"
# A path as the scripts and templates write it: "/api/posts/" + id, "/api/media/{{ id }}/...".
_API_PATH = re.compile(r"/api/[A-Za-z0-9_./{}-]*")


def page_assets() -> list[Path]:
    return sorted([*(WEB / "static").glob("*.js"), *(WEB / "templates").glob("*.html")])


def test_the_assets_are_found() -> None:
    names = {p.name for p in page_assets()}
    assert {"api.js", "composer.js", "calendar.js", "post.js", "post.html"} <= names


def test_no_page_asset_calls_a_deprecated_api_path() -> None:
    deprecated = [
        f"{path.relative_to(WEB)}:{number}: {found}"
        for path in page_assets()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for found in _API_PATH.findall(line)
        if versions.successor(found) is not None
    ]
    assert deprecated == []


def test_the_check_recognises_a_deprecated_path() -> None:
    assert _API_PATH.findall('call("PATCH", "/api/posts/" + id)') == ["/api/posts/"]
    assert versions.successor("/api/posts/") == "/api/v1/posts/"
    assert versions.successor("/api/v1/posts/") is None
