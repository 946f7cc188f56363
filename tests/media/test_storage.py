"""Local media storage: whole files under its root, keys that cannot leave it."""

from __future__ import annotations

from pathlib import Path

import pytest

from postpilot.errors import InvalidValue
from postpilot.media.storage import LocalMediaStorage

KEY = "0b6f2a4c-5d1e-4f7a-9b3c-2e8d1f0a6b7c/original"


async def test_put_get_exists_delete(tmp_path: Path) -> None:
    storage = LocalMediaStorage(tmp_path / "media")
    assert await storage.get(KEY) is None
    assert not await storage.exists(KEY)
    await storage.put(KEY, b"bytes")
    await storage.put(KEY, b"new bytes")  # replaced whole
    assert await storage.get(KEY) == b"new bytes"
    assert await storage.exists(KEY)
    assert [p.name for p in (tmp_path / "media" / KEY).parent.iterdir()] == ["original"]
    await storage.delete(KEY)
    await storage.delete(KEY)  # already gone: nothing to do
    assert not await storage.exists(KEY)
    assert list((tmp_path / "media").iterdir()) == [], "the media's folder went with it"


@pytest.mark.parametrize("key", ["../etc/passwd", "abc/original", f"{KEY}/../../x", "/tmp/x"])
async def test_keys_outside_the_root_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalMediaStorage(tmp_path)
    with pytest.raises(InvalidValue):
        await storage.put(key, b"x")
