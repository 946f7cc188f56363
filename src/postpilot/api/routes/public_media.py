"""GET /media/{id}/{token}: a library image's published variant for the platforms that download
media from a URL themselves. No session or key: the signed, expiring token (media/links.py) is
the permission. Every refusal is the same 404, so a link reveals nothing about other media;
there is no listing."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response

from postpilot.api.deps import RuntimeDep
from postpilot.api.errors import ApiError
from postpilot.media import library, links

router = APIRouter(tags=["media"])

MEDIA_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {}}, "description": "The image's bytes."},
    404: {"description": "No such link, or it expired."},
}


def _gone() -> ApiError:
    return ApiError(404, "not_found", "no such media link, or it expired")


@router.api_route(
    links.PATH + "/{media_id}/{token}",
    methods=["GET", "HEAD"],  # some platforms look before they download
    response_class=Response,
    responses=NOT_FOUND,
    include_in_schema=False,  # made for the platforms, not for API clients
)
async def linked_media(media_id: str, token: str, runtime: RuntimeDep) -> Response:
    if not MEDIA_ID.match(media_id):
        raise _gone()
    left = links.for_settings(runtime.settings).seconds_left(media_id, token, runtime.now())
    if left is None:
        raise _gone()
    media = await library.LibraryReader(library.open_storage(runtime.settings)).read(media_id)
    if media is None:
        raise _gone()
    return Response(
        media.content,
        media_type=media.content_type,
        # The bytes of a media's variant never change; a cache keeps them no longer than the link.
        headers={
            "Cache-Control": f"public, max-age={left}, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
