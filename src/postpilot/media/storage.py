"""Where library media bytes live: a small interface (put/get/delete/exists) and local files
under MEDIA_DIR, the default. Another backend (an object store) implements the same four."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from postpilot.errors import InvalidValue

# "<media id>/<name>": both parts plain, so a key can never leave the storage's root.
_KEY = re.compile(r"^[0-9a-f-]{36}/[a-z0-9_.]{1,40}$")


class MediaStorage(Protocol):
    async def put(self, key: str, content: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise InvalidValue(f"not a media storage key: {key[:80]!r}")
    return key


class LocalMediaStorage:
    """Files under `root`, written whole (a temporary file renamed into place), so a reader sees
    the old bytes or the new ones, never half of them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, content: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), content)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        with contextlib.suppress(OSError):  # the media's folder goes with its last file
            await asyncio.to_thread(path.parent.rmdir)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)
