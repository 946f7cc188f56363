"""Structured logs: one JSON object per line, with whatever `extra=` fields the caller gave
(pass_id, delivery_id, worker_id...). Secrets are never passed to the logger."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Record attributes that are not the caller's fields. `color_message` is uvicorn's copy of its
# message with ANSI colours, meant for a terminal: the plain `message` says the same.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# ANSI escape sequences (colours, cursor moves) as JSON writes them, and any ESC left alone: a
# JSON line is read by machines, never by a terminal, wherever in the entry the text came from.
# Only an escape JSON wrote: one after an even run of backslashes (typed text stays as it is).
_ANSI_IN_JSON = re.compile(r"(?<!\\)((?:\\\\)*)\\u001b(?:\[[0-9;?]*[A-Za-z])?")

# Fields every line logged within a `context()` block carries (pass_id, delivery_id...), also
# from tasks started inside it: a publisher's warning names the pass and the delivery.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "postpilot_log_context", default=None
)


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Adds the current `context()` fields to each record (explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _ANSI_IN_JSON.sub(r"\1", json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line}  {tail}" if tail else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
