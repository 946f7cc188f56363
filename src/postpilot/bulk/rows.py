"""One CSV row into the body `POST /api/posts` takes, with each problem tied to its column.

Targets and variant columns name accounts by id or handle; a handle on several platforms is
written `platform:handle`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from postpilot.bulk import columns as c

MAX_EXTERNAL_ID = 255
# How the post checks name a thread's part in their messages: "thread[0]", "thread[2].media_ids".
THREAD_PART = re.compile(r"^thread\[(?P<index>\d+)\](?:\.(?P<field>media_urls|media_ids))?$")
MAX_SOURCE = 32
DEFAULT_SOURCE = "import"


@dataclass(frozen=True, slots=True)
class Problem:
    column: str  # "" when it is the row as a whole
    message: str


@dataclass(frozen=True, slots=True)
class Known:
    """An account a file may name."""

    id: str
    platform: str
    handle: str


class AccountIndex:
    def __init__(self, accounts: Iterable[Known]) -> None:
        self.by_id: dict[str, Known] = {}
        self.by_handle: dict[str, list[Known]] = {}
        for account in accounts:
            self.by_id[account.id] = account
            self.by_handle.setdefault(account.handle.casefold(), []).append(account)

    def resolve(self, ref: str) -> Known | str:
        """The account `ref` names, or what is wrong with it."""
        if ref in self.by_id:
            return self.by_id[ref]
        platform, _, handle = ref.partition(":")
        if handle and any(a.platform == platform for a in self.by_id.values()):
            found = [a for a in self.by_handle.get(handle.casefold(), []) if a.platform == platform]
        else:
            found = self.by_handle.get(ref.casefold(), [])
        if len(found) == 1:
            return found[0]
        if not found:
            return f"no account {ref} in this workspace"
        platforms = ", ".join(sorted(a.platform for a in found))
        return f"{ref} is an account on several platforms ({platforms}): write platform:{ref}"


@dataclass(slots=True)
class Candidate:
    """A row read into a post's fields, before the checks a post gets."""

    number: int
    body: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    source: str = DEFAULT_SOURCE
    problems: list[Problem] = field(default_factory=list)
    # account id -> the column its variant came from, to point a problem at it
    variant_columns: dict[str, str] = field(default_factory=dict)

    def column_of(self, location: tuple[Any, ...]) -> str:
        """The column a body field (a validation error's location) came from."""
        head = str(location[0]) if location else ""
        if head == "thread" and len(location) > 1 and isinstance(location[1], int):
            field = str(location[2]) if len(location) > 2 else "text"
            return _thread_column(location[1], field)
        if head == "overrides" and len(location) > 1:
            return f"{c.PLATFORM_TEXT}{location[1]}"
        if head == "account_overrides" and len(location) > 1:
            return self.variant_columns.get(str(location[1]), head)
        return head if head in c.FIXED else ""

    def problem_of_message(self, message: str) -> Problem:
        """A check's message as a problem of its column; a thread part's message names the part
        by its column ("thread:2: ..."), as the file does, not by the API's 0-based index."""
        column = self.column_of_message(message)
        head, colon, rest = message.partition(":")
        if colon and THREAD_PART.match(head):
            message = f"{column}:{rest}"
        return Problem(column, message)

    def column_of_message(self, message: str) -> str:
        """The column a check's message is about (it starts with the field, or a platform)."""
        head = message.partition(":")[0]
        if found := THREAD_PART.match(head):
            return _thread_column(int(found["index"]), found["field"] or "text")
        if head == c.FIRST_COMMENT:
            return c.FIRST_COMMENT
        if head.startswith("account_overrides."):
            account_id = head.removeprefix("account_overrides.").partition(" ")[0]
            return self.variant_columns.get(account_id, "account_overrides")
        if head == "overrides":
            named = [
                p
                for p in self.body.get("overrides", {})
                if repr(p) in message or message.endswith(f" {p}")
            ]
            return f"{c.PLATFORM_TEXT}{named[0]}" if named else c.TEXT
        if head == "media_ids" and "media_ids" not in self.body:
            return c.MEDIA_URLS  # the platform takes no library media: the URLs would do
        if head in c.FIXED:
            return head
        if head in self.body.get("overrides", {}):
            return f"{c.PLATFORM_TEXT}{head}"  # a platform's limit, met by its own text
        return c.TEXT if head.isidentifier() else ""


def candidate(row: c.Row, accounts: AccountIndex) -> Candidate:
    cells = {name: value.strip() for name, value in row.cells.items()}
    found = Candidate(number=row.number)
    body = found.body
    body["text"] = row.cells.get(c.TEXT, "")
    if cells.get(c.SCHEDULED_AT):
        body["scheduled_at"] = cells[c.SCHEDULED_AT]
    if cells.get(c.TIMEZONE):
        body["timezone"] = cells[c.TIMEZONE]
    body["targets"] = _targets(found, cells.get(c.TARGETS, ""), accounts)
    if urls := c.split(cells.get(c.MEDIA_URLS, "")):
        body["media_urls"] = urls
    if media := c.split(cells.get(c.MEDIA_IDS, "")):
        body["media_ids"] = media
    overrides = {
        name.removeprefix(c.PLATFORM_TEXT).strip(): row.cells[name]
        for name in row.cells
        if name.startswith(c.PLATFORM_TEXT) and cells[name]
    }
    if overrides:
        body["overrides"] = overrides
    if variants := _variants(found, row, cells, accounts):
        body["account_overrides"] = variants
    if thread := _thread(found, row, cells):
        body["thread"] = thread
    if cells.get(c.FIRST_COMMENT):
        body["first_comment"] = row.cells[c.FIRST_COMMENT]
    _labels(found, cells)
    return found


def _targets(found: Candidate, cell: str, accounts: AccountIndex) -> list[str]:
    ids = []
    for ref in c.split(cell):
        account = accounts.resolve(ref)
        if isinstance(account, str):
            found.problems.append(Problem(c.TARGETS, account))
        elif account.id in ids:
            found.problems.append(Problem(c.TARGETS, f"{ref} is listed twice"))
        else:
            ids.append(account.id)
    if not cell.strip():
        found.problems.append(Problem(c.TARGETS, "give at least one account"))
    return ids


def _variants(
    found: Candidate, row: c.Row, cells: dict[str, str], accounts: AccountIndex
) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    for name in row.cells:
        if not name.startswith(c.ACCOUNT_TEXT) or not cells[name]:
            continue
        ref = name.removeprefix(c.ACCOUNT_TEXT).strip()
        account = accounts.resolve(ref)
        if isinstance(account, str):
            found.problems.append(Problem(name, account))
            continue
        variant: dict[str, Any] = {"text": row.cells[name]}
        media_column = f"{c.ACCOUNT_MEDIA}{ref}"
        if media := cells.get(media_column):
            variant["media_ids"] = c.split(media)
        variants[account.id] = variant
        found.variant_columns[account.id] = name
    for name in row.cells:
        ref = name.removeprefix(c.ACCOUNT_MEDIA).strip()
        if name.startswith(c.ACCOUNT_MEDIA) and cells[name] and not cells.get(c.ACCOUNT_TEXT + ref):
            found.problems.append(
                Problem(name, f"an account's media need its text: fill in {c.ACCOUNT_TEXT}{ref}")
            )
    return variants


def _thread(found: Candidate, row: c.Row, cells: dict[str, str]) -> list[dict[str, Any]]:
    """The thread's parts in order; a part is there when any of its cells is filled, and the
    parts must follow each other from 1 (a gap would send them in another order)."""
    parts: dict[int, dict[str, Any]] = {}
    for name in row.cells:
        located = c.thread_part(name)
        if located is None or not cells[name]:
            continue
        prefix, number = located
        part = parts.setdefault(number, {"text": ""})
        if prefix == c.THREAD_TEXT:
            part["text"] = row.cells[name]
        else:
            part["media_urls" if prefix == c.THREAD_MEDIA_URLS else "media_ids"] = c.split(
                cells[name]
            )
    for number in sorted(parts):
        if number > 1 and number - 1 not in parts:
            found.problems.append(
                Problem(
                    c.thread_column(c.THREAD_TEXT, number),
                    f"part {number} follows an empty part {number - 1}: fill the parts in order",
                )
            )
    return [parts[n] for n in sorted(parts)]


def _thread_column(index: int, field: str) -> str:
    """The column of a body's thread[index].field (index counts from 0, columns from 1)."""
    prefix = {"media_urls": c.THREAD_MEDIA_URLS, "media_ids": c.THREAD_MEDIA_IDS}.get(
        field, c.THREAD_TEXT
    )
    return c.thread_column(prefix, index + 1)


def _labels(found: Candidate, cells: dict[str, str]) -> None:
    if external_id := cells.get(c.EXTERNAL_ID):
        if len(external_id) > MAX_EXTERNAL_ID:
            found.problems.append(
                Problem(c.EXTERNAL_ID, f"longer than {MAX_EXTERNAL_ID} characters")
            )
        found.external_id = external_id
    if source := cells.get(c.SOURCE):
        if len(source) > MAX_SOURCE:
            found.problems.append(Problem(c.SOURCE, f"longer than {MAX_SOURCE} characters"))
        found.source = source
