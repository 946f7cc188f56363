"""/api/posts/import and /api/posts/export: posts in bulk as CSV (format: bulk/columns.py).

An import checks every row as `POST /api/posts` would, then creates all of them in one
transaction or none; rows carrying an `external_id` imported before are skipped, not doubled.
Mounted before the posts router, so `/import` and `/export` are not taken for a post id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from postpilot.api import threads
from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError
from postpilot.api.fields import Moment
from postpilot.api.routes.posts import checked, linked_media, stored_variants
from postpilot.api.schemas import PostCreate
from postpilot.bulk import columns, export, rows
from postpilot.bulk.report import ImportReport, RowReport
from postpilot.core.states import PostStatus
from postpilot.core.timezones import as_utc
from postpilot.scheduler.runtime import Runtime
from postpilot.store import accounts, posts
from postpilot.store import media as store_media
from postpilot.store.tables import Account

router = APIRouter(prefix="/api/posts", tags=["posts"])

IMPORT_PATH = "/api/posts/import"
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file
CSV_TYPES = ("text/csv", "application/csv")


def upload_limits(max_bytes: int) -> dict[str, int]:
    """The front door's body limit for an import (today's path and the versioned one)."""
    limit = max_bytes + MULTIPART_OVERHEAD
    return {IMPORT_PATH: limit, IMPORT_PATH.replace("/api/", "/api/v1/", 1): limit}


class ProblemPublic(BaseModel):
    column: str = ""
    message: str


class RowPublic(BaseModel):
    row: int
    ok: bool
    problems: list[ProblemPublic]
    post: dict[str, Any] | None
    existing_post_id: str | None


class ImportResult(BaseModel):
    dry_run: bool
    ok: bool
    created: int
    existing: int
    summary: str
    rows: list[RowPublic]


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post(
    "/import",
    status_code=201,
    response_model=ImportResult,
    openapi_extra=_IMPORT_BODY,
    responses={
        200: {"description": "A dry run: every row is fine; nothing was created."},
        409: {"description": "Another import created a post with the same external_id."},
        413: {"description": "The file is larger than IMPORT_MAX_BYTES."},
        415: {"description": "Neither text/csv nor a multipart form with a `file`."},
        422: {
            "description": "The file is not a CSV of posts, or rows have problems (the "
            "row-by-row report is in `details`); nothing was created."
        },
    },
)
async def import_posts(
    request: Request,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    dry_run: bool = False,
) -> JSONResponse:
    """Import posts from CSV (a `text/csv` body, or a multipart form's `file`). With
    `dry_run=true` nothing is created and the report says what would be."""
    data = await _csv_bytes(request, runtime.settings.IMPORT_MAX_BYTES)
    workspace_id = workspace.id
    report = await import_csv(session, runtime, workspace_id, data, dry_run=dry_run, actor=actor)
    if not dry_run:
        try:
            await session.commit()
        except IntegrityError as exc:
            raise conflict() from exc
        runtime.wakeup.set()
    answer = ImportResult.model_validate(report.as_json()).model_dump(mode="json")
    return JSONResponse(answer, status_code=200 if dry_run else 201)


def conflict() -> ApiError:
    return ApiError(
        409,
        "import_conflict",
        "another import created a post with one of these external ids meanwhile: "
        "import the file again to skip them",
    )


async def _csv_bytes(request: Request, max_bytes: int) -> bytes:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10) as form:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise ApiError(422, "invalid_request", "the form needs the CSV in a `file` field")
            data = await file.read(max_bytes + 1)
    elif kind in CSV_TYPES:
        data = await request.body()
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the CSV as a text/csv body or as `file` in a multipart/form-data form",
        )
    if len(data) > max_bytes:
        raise ApiError(413, "body_too_large", f"the CSV is larger than {max_bytes} bytes")
    return data


async def import_csv(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    data: bytes,
    *,
    dry_run: bool,
    actor: str,
) -> ImportReport:
    """Check every row, then (unless a dry run, and only if every row is fine) create their
    posts in the caller's transaction; the caller commits. A file that cannot be read is an
    ApiError; rows with problems make a report whose `ok` is false, and the 422 given here."""
    try:
        sheet = columns.read(data, max_rows=runtime.settings.IMPORT_MAX_ROWS)
    except columns.CsvRefused as exc:
        raise ApiError(422, "csv_invalid", str(exc)) from exc
    known = rows.AccountIndex(
        rows.Known(a.id, a.platform, a.handle)
        for a in await accounts.list_accounts(session, workspace_id)
    )
    candidates = [rows.candidate(row, known) for row in sheet.rows]
    _repeated_external_ids(candidates)
    existing = await posts.by_external_ids(
        session, workspace_id, [c.external_id for c in candidates if c.external_id]
    )
    now = runtime.now()
    report = ImportReport(dry_run=dry_run, rows=[])
    ready: list[tuple[RowReport, rows.Candidate, PostCreate, list[Account], datetime]] = []
    for candidate in candidates:
        row = RowReport(candidate.number, list(candidate.problems))
        report.rows.append(row)
        if candidate.external_id in existing:
            # Imported before: not checked again (its time may be past by now).
            row.problems, row.existing_post_id = [], existing[candidate.external_id]
            continue
        if row.problems:
            continue
        checks = await _check(session, runtime, workspace_id, candidate, now)
        if isinstance(checks, list):
            row.problems = checks
            continue
        body, targets, at = checks
        row.post = _preview(body, at, candidate)
        ready.append((row, candidate, body, targets, at))
    if not report.ok:
        raise ApiError(
            422,
            "import_rows_invalid",
            report.summary(),
            [r.as_json() for r in report.rows],
        )
    if not dry_run:
        try:
            for row, candidate, body, targets, at in ready:
                post = await _create(
                    session, workspace_id, candidate, body, targets, at, now, actor
                )
                assert row.post is not None
                row.post["id"] = post
        except IntegrityError as exc:  # PostgreSQL: a concurrent import's row, at the insert
            await session.rollback()
            raise conflict() from exc
    return report


def _repeated_external_ids(candidates: list[rows.Candidate]) -> None:
    first: dict[str, int] = {}
    for candidate in candidates:
        if candidate.external_id is None:
            continue
        if candidate.external_id in first:
            candidate.problems.append(
                rows.Problem(
                    columns.EXTERNAL_ID,
                    f"{candidate.external_id} is also on row {first[candidate.external_id]}",
                )
            )
        else:
            first[candidate.external_id] = candidate.number


async def _check(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    candidate: rows.Candidate,
    now: datetime,
) -> tuple[PostCreate, list[Account], datetime] | list[rows.Problem]:
    """The row's post, checked as `POST /api/posts` checks one, or its problems."""
    try:
        body = PostCreate.model_validate(candidate.body)
    except ValidationError as exc:
        return [rows.Problem(candidate.column_of(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
    try:
        targets, at = await checked(session, runtime, workspace_id, body, now)
    except ApiError as exc:
        found = [
            rows.Problem(str(d["field"]), str(d.get("message", "")))
            if d.get("field")
            else candidate.problem_of_message(str(d.get("message", "")))
            for d in exc.details
        ]
        return found or [candidate.problem_of_message(exc.message)]
    return body, targets, at


def _preview(body: PostCreate, at: datetime, candidate: rows.Candidate) -> dict[str, Any]:
    """The post a row makes, as the report shows it."""
    return {
        "external_id": candidate.external_id,
        "text": body.text,
        "scheduled_at": as_utc(at).isoformat(),
        "timezone": body.timezone,
        "targets": body.targets,
        "media_urls": body.media_urls,
        "media_ids": body.media_ids,
        "overrides": body.overrides,
        "account_overrides": stored_variants(body.account_overrides),
        "thread": [part.model_dump(mode="json") for part in body.thread],
        "first_comment": body.first_comment,
        "source": candidate.source,
    }


async def _create(
    session: AsyncSession,
    workspace_id: str,
    candidate: rows.Candidate,
    body: PostCreate,
    targets: list[Account],
    at: datetime,
    now: datetime,
    actor: str,
) -> str:
    post = await posts.create_post(
        session,
        workspace_id=workspace_id,
        text_=body.text,
        media_urls=body.media_urls + [store_media.reference(i) for i in body.media_ids],
        overrides=body.overrides,
        scheduled_at=at,
        timezone=body.timezone,
        accounts=targets,
        source=candidate.source,
        now=now,
        actor=actor,
        account_overrides=stored_variants(body.account_overrides),
        external_id=candidate.external_id,
    )
    post.thread, post.first_comment = threads.stored_thread(body.thread), body.first_comment
    own_media = list(dict.fromkeys(body.media_ids + threads.media_ids(body.thread)))
    if linked := linked_media(own_media, body.account_overrides):
        await store_media.link_post(session, post.id, linked, now)  # a new post has no links yet
    return post.id


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The posts as CSV."}},
)
async def export_posts(
    workspace: WorkspaceDep,
    runtime: RuntimeDep,
    export_format: Annotated[Literal["csv"], Query(alias="format")] = "csv",
    status: PostStatus | None = None,
    account_id: Annotated[str | None, Query(max_length=100)] = None,
    platform: Annotated[str | None, Query(max_length=50)] = None,
    scheduled_from: Moment | None = None,
    scheduled_to: Moment | None = None,
) -> StreamingResponse:
    """The posts the list's filters select, oldest schedule first, as a CSV the import takes
    back. Cells a spreadsheet would run as a formula (starting with = + - @) get a leading
    apostrophe, which the import removes."""
    filters: dict[str, Any] = {
        "status": status,
        "account_id": account_id,
        "platform": platform,
        "scheduled_from": as_utc(scheduled_from) if scheduled_from else None,
        "scheduled_to": as_utc(scheduled_to) if scheduled_to else None,
    }
    return StreamingResponse(
        export.lines(runtime.db.session, workspace.id, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="posts.{export_format}"'},
    )
