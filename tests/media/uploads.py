"""Uploading to /api/media in tests, and reading a refusal in the error shape."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import ApiServer


async def upload(
    api: ApiServer | httpx.AsyncClient,
    data: bytes,
    *,
    name: str = "photo.png",
    platforms: list[str] | None = None,
    alt_text: str | None = None,
) -> httpx.Response:
    client = api.client if isinstance(api, ApiServer) else api
    form: dict[str, Any] = {}
    if platforms is not None:
        form["platforms"] = platforms
    if alt_text is not None:
        form["alt_text"] = alt_text
    return await client.post("/api/media", files={"file": (name, data, "image/png")}, data=form)


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and set(error) == {"code", "message", "details"}
    return str(error["message"])
