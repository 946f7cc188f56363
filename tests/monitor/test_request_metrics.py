"""The real app counts and times every API request on /metrics by method, route template (never
the raw path) and status, the guard's refusals and unknown paths included."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from tests.helpers import api_server
from tests.monitor.support import OPERATOR


def _samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


def _key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


async def test_requests_are_counted_by_route_template_and_status(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox, API_MAX_BODY_BYTES=1024) as api:
        ids = [str(uuid.uuid4()) for _ in range(3)]
        for post_id in ids:
            assert (await api.client.get(f"/api/posts/{post_id}")).status_code == 404
        assert (await api.client.get("/api/posts")).status_code == 200
        assert (await api.client.get("/nowhere/at/all")).status_code == 404
        too_large = await api.client.post("/api/posts", content=b"x" * 2048)
        assert too_large.status_code == 413
        assert (await api.client.request("PROPFIND", "/api/posts")).status_code == 405
        exposition = (await api.client.get("/metrics", headers=OPERATOR)).text

    counts = _samples(exposition, "postpilot_http_requests_total")
    assert counts[_key(method="GET", route="/api/posts/{post_id}", status="404")] == 3
    assert counts[_key(method="GET", route="/api/posts", status="200")] == 1
    assert counts[_key(method="GET", route="unmatched", status="404")] == 1
    assert counts[_key(method="POST", route="unmatched", status="413")] == 1
    assert counts[_key(method="other", route="/api/posts", status="405")] == 1
    assert not any(post_id in exposition for post_id in ids)
    assert "/nowhere" not in exposition
    durations = _samples(exposition, "postpilot_http_request_duration_seconds_count")
    assert durations[_key(method="GET", route="/api/posts/{post_id}")] == 3
    buckets = _samples(exposition, "postpilot_http_request_duration_seconds_bucket")
    assert buckets[_key(method="GET", route="/api/posts", le="+Inf")] == 1
