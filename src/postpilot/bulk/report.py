"""The row-by-row report of an import: each row ok (with the post it creates, would create,
or already created under its external id) or its problems, column by column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from postpilot.bulk.rows import Problem


@dataclass(slots=True)
class RowReport:
    row: int
    problems: list[Problem] = field(default_factory=list)
    post: dict[str, Any] | None = None  # the post as it would be (dry run) or was created
    existing_post_id: str | None = None  # imported before under the same external_id

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "ok": self.ok,
            "problems": [{"column": p.column, "message": p.message} for p in self.problems],
            "post": self.post,
            "existing_post_id": self.existing_post_id,
        }


@dataclass(slots=True)
class ImportReport:
    dry_run: bool
    rows: list[RowReport]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def bad_rows(self) -> list[RowReport]:
        return [r for r in self.rows if not r.ok]

    @property
    def created(self) -> int:
        """Posts the import creates (or, in a dry run, would create)."""
        return sum(1 for r in self.rows if r.ok and r.existing_post_id is None)

    @property
    def existing(self) -> int:
        return sum(1 for r in self.rows if r.existing_post_id is not None)

    def summary(self) -> str:
        if not self.ok:
            return (
                f"{len(self.bad_rows)} of {len(self.rows)} rows have problems; nothing was imported"
            )
        verb = "would create" if self.dry_run else "created"
        return f"{verb} {self.created} posts from {len(self.rows)} rows" + (
            f"; {self.existing} imported before (same external_id)" if self.existing else ""
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "created": self.created if self.ok else 0,
            "existing": self.existing,
            "summary": self.summary(),
            "rows": [r.as_json() for r in self.rows],
        }
