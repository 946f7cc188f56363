"""Values the databases cannot store, found anywhere in a request before anything reads them.

PostgreSQL refuses NUL in text and in JSON; a lone surrogate cannot be encoded as UTF-8 (SQLite
and PostgreSQL both fail on it); JSON columns cannot hold NaN or infinities."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from postpilot.errors import InvalidValue

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Deeper than any body of ours; bounded so that no walk or validator recurses without end.
MAX_DEPTH = 32
# Enough to say what is wrong without echoing a hostile body back.
MAX_PROBLEMS = 20
MAX_NAME = 100


class BadJson(InvalidValue):
    """The body is not JSON we can read."""


def text_problem(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return "contains a lone UTF-16 surrogate, which is not valid Unicode text"


def parse(raw: bytes) -> Any:
    """The JSON document in `raw`; NaN and infinities are refused (JSON has neither)."""

    def no_constant(name: str) -> Any:
        raise BadJson(f"{name} is not a JSON number")

    try:
        return json.loads(raw, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise BadJson(f"not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise BadJson(f"nested more than {MAX_DEPTH} levels deep") from exc
    except ValueError as exc:  # bad UTF-8, an integer of thousands of digits
        raise BadJson(f"not valid JSON: {exc}") from exc


def problems(value: Any, where: str = "") -> list[dict[str, str]]:
    """{"field", "message"} for each unstorable string, key or number in a JSON value."""
    found: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack and len(found) < MAX_PROBLEMS:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            found.append({"field": path or "body", "message": f"nested deeper than {MAX_DEPTH}"})
        elif isinstance(item, str):
            if problem := text_problem(item):
                found.append({"field": path or "body", "message": problem})
        elif isinstance(item, float) and not math.isfinite(item):
            found.append({"field": path or "body", "message": "is not a finite number"})
        elif isinstance(item, dict):
            for key, child in item.items():
                name = _join(path, str(key))
                if problem := text_problem(key):
                    found.append({"field": name, "message": f"the key {problem}"})
                stack.append((child, name, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, _join(path, str(i)), depth + 1) for i, child in enumerate(item))
    return found


def _join(path: str, name: str) -> str:
    # A bad key is named by a readable form of itself, never with the raw NUL.
    safe = _UNSTORABLE.sub("\N{REPLACEMENT CHARACTER}", name[:MAX_NAME])
    return f"{path}.{safe}" if path else safe
