"""Every error answer has the one shape, and the OpenAPI document declares each one with it.
(The app is called in-process: none of these answers reach a route's database work.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from postpilot.api.app import create_app
from postpilot.api.guard import BodyTooLarge, read_body
from postpilot.settings import load_settings


def app_without_database() -> FastAPI:
    return create_app(load_settings(_env_file=None, API_MAX_BODY_BYTES=4096))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = app_without_database()

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret-token-in-the-text")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert isinstance(error["details"], list)
    return error


async def test_routing_errors_and_crashes_have_the_error_shape(client: httpx.AsyncClient) -> None:
    assert error_of(await client.get("/nowhere"), 404)["code"] == "not_found"
    wrong = await client.put("/api/accounts")
    assert error_of(wrong, 405)["code"] == "method_not_allowed"
    # Both routes at this path, not only the first one Starlette tried.
    assert wrong.headers["allow"] == "GET, POST"
    crash = await client.get("/boom")
    assert error_of(crash, 500)["code"] == "internal_error"
    assert "secret-token" not in crash.text
    too_big = await client.post("/api/posts", content=b"x" * 5000)
    assert error_of(too_big, 413)["code"] == "body_too_large"
    not_json = await client.post(
        "/api/posts", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in error_of(not_json, 422)["message"]


async def test_a_body_longer_than_declared_is_refused_before_it_is_read_whole() -> None:
    chunks = [b"x" * 1024] * 50
    handed: list[int] = []

    async def receive() -> dict[str, Any]:
        handed.append(1)
        return {"type": "http.request", "body": chunks[len(handed) - 1], "more_body": True}

    scope = {"type": "http", "headers": [(b"content-length", b"10")]}
    with pytest.raises(BodyTooLarge):
        await read_body(scope, receive, 4096)
    assert len(handed) == 5  # stopped at the first chunk past the limit
    declared = {"type": "http", "headers": [(b"content-length", b"99999")]}
    with pytest.raises(BodyTooLarge):
        await read_body(declared, receive, 4096)
    assert len(handed) == 5  # refused on the header alone


def test_openapi_declares_every_error_with_the_error_shape() -> None:
    document = app_without_database().openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ErrorBody" in schemas
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    for (method, path), operation in operations.items():
        answers = operation["responses"]
        assert {"413", "422", "500"} <= set(answers), (method, path)
        for status, answer in answers.items():
            if status[0] == "4" or status == "500":
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (method, path, status)
    assert {"401", "404"} <= set(operations[("GET", "/api/posts/{post_id}")]["responses"])
    assert "404" not in operations[("GET", "/api/posts")]["responses"]
    assert {"401", "503"} <= set(operations[("POST", "/api/cron/scheduler")]["responses"])
    assert {"401", "503"} <= set(operations[("GET", "/metrics")]["responses"])
    assert "503" in operations[("GET", "/api/health/ready")]["responses"]
    for conflict in (
        ("PATCH", "/api/posts/{post_id}"),
        ("POST", "/api/deliveries/{delivery_id}/resolve"),
    ):
        assert "409" in operations[conflict]["responses"], conflict
