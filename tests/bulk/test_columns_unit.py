"""The CSV format on its own: formula-safe cells that come back unchanged, header and file
refusals, rows numbered as a spreadsheet shows them, accounts named by id or handle."""

from __future__ import annotations

import pytest

from postpilot.bulk import columns, rows

TRICKY = ["=1+1", "+33 6", "-5", "@me", "\tx", "'=already", "''", "'", "'plain", "plain", ""]


@pytest.mark.parametrize("cell", TRICKY)
def test_escaped_cells_come_back_unchanged(cell: str) -> None:
    written = columns.escape(cell)
    assert written[:1] not in columns.FORMULA_STARTS
    assert columns.unescape(written) == cell


def test_formula_cells_get_an_apostrophe_in_the_written_line() -> None:
    assert columns.line(["=SUM(A1:A2)", "ok", "-1"]) == "'=SUM(A1:A2),ok,'-1\r\n"


def _read(text: str, max_rows: int = 10) -> columns.Sheet:
    return columns.read(text.encode(), max_rows=max_rows)


def test_rows_are_numbered_from_the_header_and_blank_lines_skipped() -> None:
    sheet = _read('\ufefftext,targets\r\nhello,a\r\n,\r\n"two\nlines",b\r\nshort\r\n')
    assert sheet.columns == ("text", "targets")
    assert [(r.number, r.cells) for r in sheet.rows] == [
        (2, {"text": "hello", "targets": "a"}),
        (4, {"text": "two\nlines", "targets": "b"}),
        (5, {"text": "short", "targets": ""}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("text\r\nhello\r\n", "needs a 'targets' column"),
        ("targets,colour\r\n", "unknown column 'colour'"),
        ("targets,text,text\r\n", "column 'text' appears twice"),
        ("targets,text@\r\n", "needs a name after it"),
        ("targets\r\na\r\nb\r\nc\r\n", "more than 2 rows"),
        ("targets\r\na,b\r\n", "row 2: 2 cells but 1 columns"),
        ('targets\r\n"a"b\r\n', "not valid CSV"),
        ("targets\r\na\x00\r\n", "NUL"),
    ],
)
def test_files_that_are_not_a_csv_of_posts_are_refused(text: str, message: str) -> None:
    with pytest.raises(columns.CsvRefused, match=message):
        _read(text, max_rows=2)


def test_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(columns.CsvRefused, match="not UTF-8"):
        columns.read("targets\r\ncafé\r\n".encode("latin-1"), max_rows=10)


INDEX = rows.AccountIndex(
    [
        rows.Known("id-1", "mastodon", "@me"),
        rows.Known("id-2", "x", "@me"),
        rows.Known("id-3", "bluesky", "me.bsky.social"),
    ]
)


def test_accounts_are_named_by_id_handle_or_platform_and_handle() -> None:
    assert INDEX.resolve("id-2") == rows.Known("id-2", "x", "@me")
    assert INDEX.resolve("ME.bsky.social") == rows.Known("id-3", "bluesky", "me.bsky.social")
    assert INDEX.resolve("mastodon:@me") == rows.Known("id-1", "mastodon", "@me")
    assert "several platforms (mastodon, x)" in str(INDEX.resolve("@me"))
    assert INDEX.resolve("@nobody") == "no account @nobody in this workspace"


def test_a_row_becomes_a_post_body_with_its_variants() -> None:
    row = columns.Row(
        7,
        {
            "text": "plain",
            "targets": "mastodon:@me; id-3",
            "text:bluesky": "sky",
            "text@x:@me": "",
            "text@id-1": "mine",
            "media_ids@id-1": "m1;m2",
            "media_ids": " m3 ",
            "external_id": "row-7",
        },
    )
    found = rows.candidate(row, INDEX)
    assert found.problems == []
    assert found.body == {
        "text": "plain",
        "targets": ["id-1", "id-3"],
        "media_ids": ["m3"],
        "overrides": {"bluesky": "sky"},
        "account_overrides": {"id-1": {"text": "mine", "media_ids": ["m1", "m2"]}},
    }
    assert found.external_id == "row-7" and found.source == "import"
    assert found.column_of(("account_overrides", "id-1", "text")) == "text@id-1"
    assert found.column_of_message("bluesky: text is 400 graphemes") == "text:bluesky"
    assert found.column_of_message("mastodon: text is 600 characters") == "text"


def test_row_problems_name_their_columns() -> None:
    row = columns.Row(
        3,
        {"targets": "@me;@nobody", "text@@ghost": "hi", "media_ids@id-2": "m1", "source": "s" * 40},
    )
    found = rows.candidate(row, INDEX)
    assert sorted(p.column for p in found.problems) == [
        "media_ids@id-2",
        "source",
        "targets",
        "targets",
        "text@@ghost",
    ]


def test_thread_and_first_comment_columns_become_the_body_and_name_their_problems() -> None:
    row = columns.Row(
        4,
        {
            "targets": "id-1",
            "thread:2": "second",
            "thread:1": "first",
            "thread_media_ids:2": "m1; m2",
            "first_comment": "hello",
        },
    )
    found = rows.candidate(row, INDEX)
    assert found.problems == []
    assert found.body["thread"] == [
        {"text": "first"},
        {"text": "second", "media_ids": ["m1", "m2"]},
    ]
    assert found.body["first_comment"] == "hello"
    assert found.column_of(("thread", 1, "media_ids", 0)) == "thread_media_ids:2"
    assert found.column_of(("thread", 0, "text")) == "thread:1"
    assert found.column_of_message("thread[1]: mastodon: text is 600 characters") == "thread:2"
    assert found.column_of_message("thread[0].media_urls: media x: bad") == "thread_media_urls:1"
    # The report names the part as the file does (1-based columns), not by the API's index.
    assert found.problem_of_message("thread[1]: mastodon: text is 600 characters") == rows.Problem(
        "thread:2", "thread:2: mastodon: text is 600 characters"
    )
    assert found.problem_of_message("text: too long") == rows.Problem("text", "text: too long")
    assert found.column_of_message("first_comment: must not be empty") == "first_comment"
    gap = rows.candidate(columns.Row(5, {"targets": "id-1", "thread:2": "alone"}), INDEX)
    assert [p.column for p in gap.problems] == ["thread:2"]
