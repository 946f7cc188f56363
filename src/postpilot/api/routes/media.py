"""/api/media: the workspace's media library (upload by file or URL, list, read, alt text,
delete). Posts use it by id (`media_ids`); publishers read it from storage, not through here."""

from __future__ import annotations

import uuid
from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api import pagination, text, versions
from postpilot.api.deps import RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.media_schemas import (
    AltText,
    MediaFromUrl,
    MediaPage,
    MediaPublic,
    MediaUpdate,
    MediaVariant,
    check_platforms,
)
from postpilot.core.timezones import as_utc
from postpilot.media import library
from postpilot.publishers.media import MediaError, check_url_shape
from postpilot.runtime import ServiceRuntime
from postpilot.store import media as store_media
from postpilot.store.tables import MediaItem, new_id

router = APIRouter(prefix="/api/media", tags=["media"])

UPLOAD_PATH = "/api/media"
CANONICAL_PATH = UPLOAD_PATH.replace(versions.LEGACY, versions.V1, 1)  # what answers name
MULTIPART_OVERHEAD = 64 * 1024  # the form's other fields and boundaries
_REFUSALS: dict[int | str, dict[str, Any]] = {
    413: {"description": "The file is larger than MEDIA_MAX_UPLOAD_BYTES."},
    422: {"description": "Not an image, or outside a chosen platform's limits (named)."},
}


def upload_limits(max_upload_bytes: int) -> dict[str, int]:
    """The front door's body limit for multipart uploads (today's path and the versioned one)."""
    limit = max_upload_bytes + MULTIPART_OVERHEAD
    return {UPLOAD_PATH: limit, CANONICAL_PATH: limit}


def public(item: MediaItem) -> MediaPublic:
    return MediaPublic(
        id=item.id,
        filename=item.filename,
        content_type=item.content_type,
        size_bytes=item.size_bytes,
        width=item.width,
        height=item.height,
        sha256=item.sha256,
        alt_text=item.alt_text,
        platforms=list(item.platforms),
        variant=MediaVariant(
            content_type=item.variant_content_type,
            size_bytes=item.variant_size_bytes,
            width=item.variant_width,
            height=item.variant_height,
        ),
        content_url=f"{CANONICAL_PATH}/{item.id}/content",
        thumbnail_url=f"{CANONICAL_PATH}/{item.id}/thumbnail",
        created_at=as_utc(item.created_at),
        last_used_at=as_utc(item.last_used_at),
    )


def _filename(name: str | None, content_type: str) -> str:
    """The client's file name without folders or characters we cannot store; a plain one
    when none is left."""
    base = PurePath((name or "").replace("\\", "/")).name
    kept = "".join(ch for ch in base if ch.isprintable() and ch not in "\"'")[:255]
    return kept or f"media.{content_type.split('/')[-1]}"


async def _add(
    session: AsyncSession,
    runtime: ServiceRuntime,
    workspace_id: str,
    data: bytes,
    *,
    filename: str | None,
    alt_text: str | None,
    platforms: list[str],
) -> MediaPublic:
    if not data:
        raise ApiError(422, "media_not_image", "the file is empty")
    settings = runtime.settings
    try:
        prepared = await library.prepare(
            data, platforms=platforms, max_pixels=settings.MEDIA_MAX_PIXELS
        )
    except library.MediaRefused as exc:
        raise ApiError(422, exc.code, str(exc), [{"message": p} for p in exc.problems]) from exc
    storage, media_id, now = library.open_storage(settings), new_id(), runtime.now()
    variant = prepared.variant
    item = MediaItem(
        id=media_id,
        workspace_id=workspace_id,
        filename=_filename(filename, prepared.info.content_type),
        content_type=prepared.info.content_type,
        size_bytes=len(data),
        width=prepared.info.width,
        height=prepared.info.height,
        sha256=prepared.sha256,
        variant_content_type=variant.content_type,
        variant_size_bytes=len(variant.content),
        variant_width=variant.width,
        variant_height=variant.height,
        alt_text=alt_text or None,
        platforms=platforms,
        created_at=now,
        last_used_at=now,
    )
    # Files first, row last: a row never names bytes that are not there.
    try:
        await library.save(storage, media_id, prepared)
        await library.save_alt_text(storage, media_id, item.alt_text)
        await store_media.add(session, item)
        answer = public(item)
        await session.commit()
    except BaseException:
        await library.discard(storage, media_id)
        raise
    return answer


def _form_platforms(values: list[str]) -> list[str]:
    """Repeated `platforms` fields, or one comma-separated."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    try:
        return check_platforms(names)
    except ValueError as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"platforms: {exc}",
            [{"field": "platforms", "message": str(exc)}],
        ) from exc


def _storable(**fields: str | None) -> None:
    """Form fields skip the JSON checks at the front door: the same refusals here."""
    found = [
        {"field": name, "message": problem}
        for name, value in fields.items()
        if value is not None and (problem := text.text_problem(value))
    ]
    if found:
        message = "; ".join(f"{d['field']}: {d['message']}" for d in found)
        raise ApiError(422, "invalid_request", message, found)


@router.post("", status_code=201, response_model=MediaPublic, responses=_REFUSALS)
async def upload_media(
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="A JPEG, PNG, GIF or WebP image.")],
    alt_text: Annotated[AltText | None, Form()] = None,
    platforms: Annotated[list[str], Form(description="Repeated, or comma-separated.")] = [],  # noqa: B006
) -> MediaPublic:
    """Multipart upload (`file`, optional `alt_text` and `platforms`)."""
    _storable(alt_text=alt_text, filename=file.filename)
    chosen = _form_platforms(platforms)
    limit = runtime.settings.MEDIA_MAX_UPLOAD_BYTES
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "media_too_large", f"the file is larger than the {limit} byte limit")
    return await _add(
        session,
        runtime,
        workspace.id,
        data,
        filename=file.filename,
        alt_text=alt_text,
        platforms=chosen,
    )


@router.post("/from-url", status_code=201, response_model=MediaPublic, responses=_REFUSALS)
async def upload_media_from_url(
    body: MediaFromUrl, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> MediaPublic:
    """Downloaded now through the publishers' safe fetcher: public addresses only (checked
    after DNS and on every redirect), MEDIA_MAX_BYTES at most, images only."""
    try:
        # Only http(s): a `media:` reference here would read another workspace's library.
        check_url_shape(body.url, runtime.publish.addresses)
        fetched = await runtime.publish.media.fetch(body.url)
    except MediaError as exc:
        raise ApiError(
            422, "media_url_unusable", str(exc), [{"field": "url", "message": exc.reason}]
        ) from exc
    name = body.filename or PurePath(body.url.split("?")[0].split("#")[0]).name
    return await _add(
        session,
        runtime,
        workspace.id,
        fetched.content,
        filename=name,
        alt_text=body.alt_text,
        platforms=body.platforms,
    )


@router.get("", response_model=MediaPage, responses=pagination.INVALID_CURSOR)
async def list_media(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: pagination.Limit = 50,
    cursor: pagination.Cursor = None,
) -> MediaPage:
    """Newest first."""
    after = pagination.decode_moment("media", cursor)
    rows = await store_media.page(session, workspace.id, limit=limit, after=after)
    more = len(rows) > limit
    items = rows[:limit]
    last = items[-1] if more and items else None
    return MediaPage(
        items=[public(i) for i in items],
        next_cursor=pagination.encode_moment("media", last.created_at, last.id) if last else None,
    )


async def _item(session: AsyncSession, workspace_id: str, media_id: uuid.UUID) -> MediaItem:
    item = await store_media.get(session, workspace_id, str(media_id))
    if item is None:
        raise not_found("media", str(media_id))
    return item


@router.get("/{media_id:uuid}", response_model=MediaPublic)
async def get_media(
    media_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep
) -> MediaPublic:
    return public(await _item(session, workspace.id, media_id))


@router.patch("/{media_id:uuid}", response_model=MediaPublic)
async def update_media(
    media_id: uuid.UUID,
    body: MediaUpdate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MediaPublic:
    item = await _item(session, workspace.id, media_id)
    item.alt_text = body.alt_text or None
    answer = public(item)
    # Storage first: what publishes next reads it there (a failed commit leaves the row as it
    # was, and the next PATCH writes both again).
    await library.save_alt_text(library.open_storage(runtime.settings), item.id, item.alt_text)
    await session.commit()
    return answer


async def _bytes(
    runtime: ServiceRuntime, item: MediaItem, name: str, content_type: str
) -> Response:
    content = await library.open_storage(runtime.settings).get(library.key(item.id, name))
    if content is None:
        raise ApiError(404, "not_found", f"the {name} of media {item.id} is missing from storage")
    return Response(
        content,
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {}}, "description": "The image's bytes."}
}


@router.get("/{media_id:uuid}/content", response_class=Response, responses=_IMAGE)
async def media_content(
    media_id: uuid.UUID,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
    version: Literal["original", "published"] = "original",
) -> Response:
    """The upload as it came, or (`version=published`) the variant publishers send."""
    item = await _item(session, workspace.id, media_id)
    if version == "published":
        return await _bytes(runtime, item, library.VARIANT, item.variant_content_type)
    return await _bytes(runtime, item, library.ORIGINAL, item.content_type)


@router.get("/{media_id:uuid}/thumbnail", response_class=Response, responses=_IMAGE)
async def media_thumbnail(
    media_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """A JPEG at most 320 pixels wide and high."""
    item = await _item(session, workspace.id, media_id)
    return await _bytes(runtime, item, library.THUMBNAIL, "image/jpeg")


@router.delete(
    "/{media_id:uuid}",
    status_code=204,
    response_class=Response,
    responses={
        409: {"description": "A post not yet published or a recurrence uses it (they are named)."}
    },
)
async def delete_media(
    media_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    item = await store_media.lock(session, workspace.id, str(media_id))
    if item is None:
        raise not_found("media", str(media_id))
    needing = await store_media.posts_needing(session, item.id)
    recurring = await store_media.recurrences_needing(session, item.id)
    if needing or recurring:
        users = []
        if needing:
            users.append(f"{len(needing)} post(s) not yet published ({', '.join(needing)})")
        if recurring:
            users.append(f"{len(recurring)} recurrence(s) ({', '.join(recurring)})")
        raise ApiError(
            409,
            "media_in_use",
            f"media {media_id} is used by {' and '.join(users)}: remove it from them, wait "
            "until the posts are published, or delete the recurrences",
            [{"post_id": p, "message": f"post {p} is not yet published"} for p in needing]
            + [
                {"recurrence_id": r, "message": f"recurrence {r} makes posts with it"}
                for r in recurring
            ],
        )
    ident = item.id
    await store_media.remove(session, ident)
    await session.commit()
    await library.discard(library.open_storage(runtime.settings), ident)
    return Response(status_code=204)
