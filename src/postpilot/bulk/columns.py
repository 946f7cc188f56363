"""The CSV file of posts: its columns, reading a file into rows, writing rows, and the cell
escape that keeps spreadsheets from running a cell as a formula.

Columns, in any order (only `targets` is required; the README's "Bulk import and export"
describes each): external_id, text, scheduled_at, timezone, targets, media_urls, media_ids,
source, first_comment, `text:<platform>`, `text@<account>`, `media_ids@<account>`, and a
thread's parts `thread:<n>`, `thread_media_urls:<n>`, `thread_media_ids:<n>` (n from 1). Lists
are `;`-separated; an account is named by id or handle (`platform:handle` where a handle is on
several platforms).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from postpilot.errors import PostpilotError

EXTERNAL_ID = "external_id"
TEXT = "text"
SCHEDULED_AT = "scheduled_at"
TIMEZONE = "timezone"
TARGETS = "targets"
MEDIA_URLS = "media_urls"
MEDIA_IDS = "media_ids"
SOURCE = "source"
FIXED = (EXTERNAL_ID, TEXT, SCHEDULED_AT, TIMEZONE, TARGETS, MEDIA_URLS, MEDIA_IDS, SOURCE)
FIRST_COMMENT = "first_comment"  # written only when a post has one (as the variant columns)
PLATFORM_TEXT = "text:"
ACCOUNT_TEXT = "text@"
ACCOUNT_MEDIA = "media_ids@"
# A thread's part n (1 is the first reply): its text, then its media as a post's.
THREAD_TEXT = "thread:"
THREAD_MEDIA_URLS = "thread_media_urls:"
THREAD_MEDIA_IDS = "thread_media_ids:"
THREAD_COLUMNS = (THREAD_TEXT, THREAD_MEDIA_URLS, THREAD_MEDIA_IDS)
MAX_THREAD_PARTS = 25  # as POST /api/posts takes
SEPARATOR = ";"
MAX_CELL = 100_000  # characters; any longer text is refused by the platforms' limits anyway

# A cell a spreadsheet would run as a formula (or that starts with a control character it
# strips) is written with a leading apostrophe; so is a cell that starts with an apostrophe
# before one of these, so that removing it on import gives back exactly what was exported.
FORMULA_STARTS = frozenset("=+-@\t\r")
QUOTE = "'"


class CsvRefused(PostpilotError):
    """The file cannot be read as a CSV of posts."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    cells: dict[str, str]


@dataclass(frozen=True, slots=True)
class Sheet:
    columns: tuple[str, ...]
    rows: list[Row]


def escape(cell: str) -> str:
    """The cell as the export writes it (formula-safe)."""
    if cell[:1] in FORMULA_STARTS or (cell[:1] == QUOTE and cell[1:2] in FORMULA_STARTS | {QUOTE}):
        return QUOTE + cell
    return cell


def unescape(cell: str) -> str:
    """The cell as it was before `escape`."""
    if cell[:1] == QUOTE and cell[1:2] in FORMULA_STARTS | {QUOTE}:
        return cell[1:]
    return cell


def split(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(SEPARATOR) if part.strip()]


def thread_column(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


def thread_part(name: str) -> tuple[str, int] | None:
    """(prefix, part number) of a thread column, or None for another column. A number that is
    not 1..MAX_THREAD_PARTS is 0 (column_problem names it)."""
    for prefix in THREAD_COLUMNS:
        if name.startswith(prefix):
            digits = name[len(prefix) :].strip()
            number = int(digits) if re.fullmatch(r"[1-9][0-9]{0,2}", digits) else 0
            return prefix, number if 1 <= number <= MAX_THREAD_PARTS else 0
    return None


def column_problem(name: str) -> str | None:
    """What is wrong with a header cell, or None."""
    if name in FIXED or name == FIRST_COMMENT:
        return None
    if (part := thread_part(name)) is not None:
        return None if part[1] else f"{part[0]}<n> takes a part number from 1 to {MAX_THREAD_PARTS}"
    for prefix in (PLATFORM_TEXT, ACCOUNT_TEXT, ACCOUNT_MEDIA):
        if name.startswith(prefix):
            return None if name[len(prefix) :].strip() else f"{prefix}… needs a name after it"
    return (
        f"unknown column {name!r}: the columns are {', '.join(FIXED)}, {FIRST_COMMENT}, "
        "text:<platform>, text@<account>, media_ids@<account>, thread:<n>, "
        "thread_media_urls:<n> and thread_media_ids:<n>"
    )


def read(data: bytes, *, max_rows: int) -> Sheet:
    """The file's header and its non-empty rows, or CsvRefused saying why not."""
    try:
        content = data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not a column
    except UnicodeDecodeError as exc:
        raise CsvRefused(f"the file is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in content:
        raise CsvRefused("the file contains a NUL character: it is not a CSV text file")
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvRefused("the file is empty: the first row names the columns")
        columns = tuple(name.strip() for name in header)
        _check_header(columns)
        rows = list(_rows(reader, columns, max_rows))
    except csv.Error as exc:
        raise CsvRefused(f"row {reader.line_num}: not valid CSV ({exc})") from None
    return Sheet(columns, rows)


def _check_header(columns: tuple[str, ...]) -> None:
    problems = [p for name in columns if (p := column_problem(name))]
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            problems.append(f"column {name!r} appears twice")
        seen.add(name)
    if TARGETS not in columns:
        problems.append("the file needs a 'targets' column")
    if problems:
        raise CsvRefused("; ".join(problems))


def _rows(reader: Iterable[list[str]], columns: tuple[str, ...], max_rows: int) -> Iterable[Row]:
    count = 0
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a spreadsheet's empty trailing row
        count += 1
        if count > max_rows:
            raise CsvRefused(f"the file has more than {max_rows} rows (IMPORT_MAX_ROWS)")
        if len(cells) > len(columns):
            raise CsvRefused(f"row {number}: {len(cells)} cells but {len(columns)} columns")
        if any(len(cell) > MAX_CELL for cell in cells):
            raise CsvRefused(f"row {number}: a cell is longer than {MAX_CELL} characters")
        padded = cells + [""] * (len(columns) - len(cells))  # short rows: missing cells are empty
        yield Row(
            number, {name: unescape(cell) for name, cell in zip(columns, padded, strict=True)}
        )


def line(cells: Sequence[str]) -> str:
    """One CSV line (CRLF-terminated, as RFC 4180 writes it), every cell escaped."""
    out = io.StringIO()
    csv.writer(out).writerow([escape(cell) for cell in cells])
    return out.getvalue()
