"""Checks and shapes of a post's thread and first comment: which targets take them, and each
part within its platforms' limits (a 422 names the part)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api.errors import ApiError
from postpilot.api.schemas import PartPublic, PostPublic, ThreadPart, ThreadPartPublic
from postpilot.core.limits import LIMITS, limits_for
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.media import MediaError, check_url_shape
from postpilot.publishers.parts import COMMENT_PLATFORMS, THREAD_PLATFORMS
from postpilot.store import media as store_media
from postpilot.store.parts import StoredPart, sent_parts
from postpilot.store.tables import Account


def problems(
    thread: list[ThreadPart],
    first_comment: str | None,
    targets: list[Account],
    max_text: dict[str, int],
    addresses: AddressPolicy,
) -> list[str]:
    """Every way the thread and first comment do not fit the targets. A target takes what its
    platform has (a thread, or a first comment); one that takes neither of those given is
    refused rather than published without them."""
    found: list[str] = []
    if not thread and first_comment is None:
        return found
    for account in targets:
        takes_thread = bool(thread) and account.platform in THREAD_PLATFORMS
        takes_comment = first_comment is not None and account.platform in COMMENT_PLATFORMS
        if not (takes_thread or takes_comment):
            given = " or ".join(
                what
                for what, wanted in (("a thread", thread), ("a first comment", first_comment))
                if wanted
            )
            found.append(
                f"targets: {account.handle} on {account.platform} cannot take {given} "
                f"(threads: {', '.join(sorted(THREAD_PLATFORMS)) or 'none'}; first comments: "
                f"{', '.join(sorted(COMMENT_PLATFORMS)) or 'none'})"
            )
    thread_platforms = sorted({a.platform for a in targets} & THREAD_PLATFORMS)
    for number, part in enumerate(thread):
        where = f"thread[{number}]"
        for url in part.media_urls:
            try:
                check_url_shape(url, addresses)
            except MediaError as exc:
                found.append(f"{where}.media_urls: {exc}")
        count = len(part.media_urls) + len(part.media_ids)
        for platform in thread_platforms:
            if platform in LIMITS:
                limit = limits_for(platform, max_text=max_text)
                found += [f"{where}: {p}" for p in limit.problems(part.text, count)]
    if first_comment is not None:
        comment_platforms = sorted({a.platform for a in targets} & COMMENT_PLATFORMS)
        if not first_comment.strip():
            found.append("first_comment: must not be empty")
        for platform in comment_platforms:
            if platform in LIMITS:
                # A comment is text alone: only the length applies (not the post's media rules).
                limit = limits_for(platform, max_text=max_text)
                if (length := limit.counter(first_comment)) > limit.max_text:
                    found.append(
                        f"first_comment: {platform}: text is {length} {limit.unit}, the limit "
                        f"is {limit.max_text}"
                    )
    return found


def taking_threads(targets: list[Account]) -> list[Account]:
    """The targets a thread goes to (its media is checked against theirs alone)."""
    return [account for account in targets if account.platform in THREAD_PLATFORMS]


def stored_thread(thread: list[ThreadPart]) -> list[dict[str, Any]] | None:
    """A thread as a post keeps it: each part's media as the post's own (library references
    after URLs)."""
    if not thread:
        return None
    return [
        {
            "text": part.text,
            "media_urls": part.media_urls + [store_media.reference(i) for i in part.media_ids],
        }
        for part in thread
    ]


def public_thread(stored: list[dict[str, Any]] | None) -> list[ThreadPartPublic]:
    parts = []
    for part in stored or ():
        urls = [str(u) for u in part.get("media_urls") or ()]
        parts.append(
            ThreadPartPublic(
                text=str(part.get("text") or ""),
                media_urls=[u for u in urls if store_media.referenced_id(u) is None],
                media_ids=[i for u in urls if (i := store_media.referenced_id(u)) is not None],
            )
        )
    return parts


def public_parts(stored: list[StoredPart]) -> list[PartPublic]:
    return [
        PartPublic(
            index=p.index,
            status=p.status,
            platform_post_id=p.platform_post_id,
            url=p.url,
            sent_at=p.sent_at,
        )
        for p in stored
    ]


def invalid(found: list[str]) -> ApiError:
    return ApiError(422, "content_not_allowed", "; ".join(found), [{"message": p} for p in found])


async def with_parts(session: AsyncSession, post: PostPublic) -> PostPublic:
    """`post` with each target's sent parts, for a post that has a thread or first comment."""
    if not post.thread and post.first_comment is None:
        return post
    conn = await session.connection()
    stored = await sent_parts(conn, [target.id for target in post.targets])
    by_delivery: dict[str, list[StoredPart]] = {}
    for part in stored:
        by_delivery.setdefault(part.delivery_id, []).append(part)
    targets = [
        target.model_copy(update={"parts": public_parts(by_delivery.get(target.id, []))})
        for target in post.targets
    ]
    return post.model_copy(update={"targets": targets})


def media_ids(thread: list[ThreadPart]) -> list[str]:
    """The library media a thread uses, each once, in order."""
    return list(dict.fromkeys(i for part in thread for i in part.media_ids))


def named(error: ApiError, where: str) -> ApiError:
    """`error` about a part's media, saying which part."""
    details = [{"message": f"{where}.{d['message']}"} for d in error.details]
    message = "; ".join(d["message"] for d in details) or f"{where}: {error.message}"
    return ApiError(error.status, error.code, message, details)
