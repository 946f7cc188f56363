"""Bluesky against the real thing: Bluesky's own PDS (@atproto/pds, unmodified) running offline on
loopback, started by ../shared/peers/bluesky_pds/start.sh (tests/peers.py). The first run installs
Node 22 and builds the server (scripts/test does that in the background while lint and types
run); later runs start in a few seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext, Refreshed
from postpilot.publishers.bluesky import BlueskyPublisher, record_key
from postpilot.publishers.media import MediaFetcher
from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery
from tests import peers
from tests.publishers.conftest import account, publish_request, unique, utcnow

pytestmark = pytest.mark.peer

COLLECTION = "app.bsky.feed.post"


@pytest.fixture(scope="session")
def pds() -> Iterator[dict[str, str]]:
    folder = peers.pds_peer_dir()
    if folder is None:
        pytest.skip("the Bluesky PDS peer (../shared/peers/bluesky_pds) is not on this machine")
    # Waits for scripts/test's background install when it is still running.
    with peers.install_lock():
        started = peers.start_pds(folder)
    if started.returncode != 0:
        pytest.fail(f"start.sh failed ({started.returncode}):\n{started.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    try:
        yield values
    finally:
        peers.stop_pds(folder)


@pytest.fixture
async def pds_ctx(
    pds: dict[str, str], sandbox: SandboxClient
) -> AsyncIterator[tuple[PublishContext, dict[str, Any]]]:
    """A context whose Bluesky base is the PDS, and a logged-in account's credentials."""
    async with httpx.AsyncClient(timeout=15) as http:
        media = MediaFetcher(http, max_bytes=1_000_000, allowed_hosts=frozenset({"127.0.0.1"}))
        ctx = PublishContext(
            http=http, media=media, now=utcnow, base_urls={"bluesky": pds["PDS_BASE_URL"]}
        )
        login = {"identifier": pds["PDS_HANDLE"], "password": pds["PDS_PASSWORD"]}
        session = await BlueskyPublisher().refresh(account("bluesky", login), ctx)
        assert isinstance(session, Refreshed), session
        assert session.credentials["did"] == pds["PDS_DID"]
        yield ctx, session.credentials


async def xrpc_get(ctx: PublishContext, base: str, nsid: str, **params: Any) -> httpx.Response:
    return await ctx.http.get(f"{base}/xrpc/{nsid}", params=params)


async def count_records(ctx: PublishContext, base: str, did: str) -> list[dict[str, Any]]:
    response = await xrpc_get(
        ctx, base, "com.atproto.repo.listRecords", repo=did, collection=COLLECTION, limit=100
    )
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


async def test_publish_with_image_and_retry_creates_one_record(
    pds: dict[str, str],
    pds_ctx: tuple[PublishContext, dict[str, Any]],
    sandbox: SandboxClient,
) -> None:
    ctx, credentials = pds_ctx
    base, did = pds["PDS_BASE_URL"], pds["PDS_DID"]
    acct = account("bluesky", credentials, handle=pds["PDS_HANDLE"])
    text = unique("hello from postpilot to a real PDS")
    request = publish_request(acct, text, (sandbox.media_url("pds.png"),))
    publisher = BlueskyPublisher()
    before = len(await count_records(ctx, base, did))

    outcome = await publisher.publish(request, ctx)
    assert isinstance(outcome, outcomes.Published), outcome
    assert not outcome.already_existed
    rkey = record_key(request.idempotency_key, request.scheduled_at)
    assert outcome.platform_post_id == f"at://{did}/{COLLECTION}/{rkey}"

    stored = await xrpc_get(
        ctx, base, "com.atproto.repo.getRecord", repo=did, collection=COLLECTION, rkey=rkey
    )
    assert stored.status_code == 200, stored.text
    value = stored.json()["value"]
    assert value["text"] == text
    [image] = value["embed"]["images"]
    assert image["image"]["mimeType"] == "image/png"
    blob = await xrpc_get(
        ctx, base, "com.atproto.sync.getBlob", did=did, cid=image["image"]["ref"]["$link"]
    )
    assert blob.status_code == 200 and blob.content.startswith(b"\x89PNG")

    # The same delivery again: first as if the answer had been lost (the PDS answers 500 for
    # the existing rkey and getRecord finds it), then as a later attempt (checked first).
    again = await publisher.publish(request, ctx)
    assert isinstance(again, outcomes.Published) and again.already_existed
    retry = publish_request(
        acct,
        text,
        request.media_urls,
        key=request.idempotency_key,
        attempt=2,
        scheduled_at=request.scheduled_at,
    )
    third = await publisher.publish(retry, ctx)
    assert isinstance(third, outcomes.Published) and third.already_existed
    assert third.platform_post_id == outcome.platform_post_id

    records = await count_records(ctx, base, did)
    assert len(records) == before + 1
    assert [r["uri"] for r in records].count(outcome.platform_post_id) == 1


async def test_expired_access_token_is_renewed_by_refresh_session(
    pds: dict[str, str], pds_ctx: tuple[PublishContext, dict[str, Any]]
) -> None:
    ctx, credentials = pds_ctx
    stale = {**credentials, "access_jwt": "not-a-valid-token"}
    publisher = BlueskyPublisher()
    outcome = await publisher.publish(publish_request(account("bluesky", stale)), ctx)
    assert isinstance(outcome, outcomes.TokenExpired), outcome
    refreshed = await publisher.refresh(account("bluesky", stale), ctx)
    assert isinstance(refreshed, Refreshed), refreshed
    assert refreshed.expires_at is not None
    assert refreshed.expires_at > datetime.now(UTC) + timedelta(minutes=30)
    fresh = account("bluesky", refreshed.credentials, handle=pds["PDS_HANDLE"])
    outcome = await publisher.publish(publish_request(fresh, unique("after refresh")), ctx)
    assert isinstance(outcome, outcomes.Published), outcome


async def test_scheduler_publishes_to_the_pds_once(
    pds: dict[str, str], sqlite_db: Database, sandbox: SandboxClient
) -> None:
    """Through postpilot's scheduler: an account connected with an app password only (the
    engine logs it in through `refresh`), a due post with an image, one optimized pass; then
    the delivery is run again with the same record key and the PDS still has one record."""
    from postpilot.runtime import build_runtime
    from postpilot.scheduler.passes import run_pass
    from postpilot.store import posts
    from tests.helpers import make_settings, new_workspace

    port = sandbox.url.rsplit(":", 1)[1]
    pds_host = urlsplit(pds["PDS_BASE_URL"]).netloc  # the operator allows its own server
    settings = make_settings(sqlite_db, PRIVATE_HOSTS_ALLOWED=f"127.0.0.1:{port},{pds_host}")
    runtime = build_runtime(settings, db=sqlite_db)
    base, did = pds["PDS_BASE_URL"], pds["PDS_DID"]
    try:
        workspace_id, _ = await new_workspace(sqlite_db)
        now = runtime.now()
        text = unique("scheduled to a real PDS")
        async with sqlite_db.transaction() as session:
            acct = Account(
                workspace_id=workspace_id,
                platform="bluesky",
                handle=pds["PDS_HANDLE"],
                base_url=base,
                options={"langs": ["en"]},
                credentials=runtime.cipher.encrypt(
                    {"identifier": pds["PDS_HANDLE"], "password": pds["PDS_PASSWORD"]}
                ),
            )
            session.add(acct)
            await session.flush()
            post = await posts.create_post(
                session,
                workspace_id=workspace_id,
                text_=text,
                media_urls=[sandbox.media_url("scheduled.png")],
                overrides={},
                scheduled_at=now - timedelta(seconds=1),
                timezone="UTC",
                accounts=[acct],
                now=now,
            )
            post_id = post.id
        before = len(await count_records(runtime.publish, base, did))

        report = await run_pass(runtime, scheduler="optimized", limit=10)
        assert report.claimed == 1
        async with sqlite_db.session() as session:
            query = select(Delivery).where(Delivery.post_id == post_id)
            [delivery] = (await session.execute(query)).scalars().all()
        assert delivery.status == "published", delivery.error
        uri = delivery.platform_post_id
        rkey = uri.rsplit("/", 1)[1]
        stored = await xrpc_get(
            runtime.publish,
            base,
            "com.atproto.repo.getRecord",
            repo=did,
            collection=COLLECTION,
            rkey=rkey,
        )
        assert stored.status_code == 200 and stored.json()["value"]["text"] == text
        assert stored.json()["value"]["embed"]["images"][0]["image"]["mimeType"] == "image/png"

        # Retry the same delivery (as after a lost answer): same idempotency key, same rkey.
        async with sqlite_db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id)
                .values(status="scheduled", due_at=now - timedelta(seconds=1))
            )
        report = await run_pass(runtime, scheduler="reference", limit=10)
        assert report.claimed == 1
        records = await count_records(runtime.publish, base, did)
        assert len(records) == before + 1
        assert [r["uri"] for r in records].count(uri) == 1
    finally:
        await runtime.close()


async def test_connect_with_an_app_password_then_publish(pds: dict[str, str]) -> None:
    """The Bluesky connector against the real PDS: an app password made there, the PDS found
    from the DID's document in the PLC directory (this PDS's createSession has no didDoc),
    getSession as the live check, one post through the connected credentials read back, a
    wrong app password refused in the PDS's words, and the session ended on disconnect."""
    from postpilot.connect.base import ConnectContext, ConnectRefused
    from postpilot.connect.platforms.bluesky import CONNECTOR

    base, handle = pds["PDS_BASE_URL"], pds["PDS_HANDLE"]
    async with httpx.AsyncClient(timeout=15) as http:
        login = await http.post(
            f"{base}/xrpc/com.atproto.server.createSession",
            json={"identifier": handle, "password": pds["PDS_PASSWORD"]},
        )
        made = await http.post(
            f"{base}/xrpc/com.atproto.server.createAppPassword",
            json={"name": unique("postpilot")[:30]},
            headers={"Authorization": f"Bearer {login.json()['accessJwt']}"},
        )
        assert made.status_code == 200, made.text
        app_password = made.json()["password"]
        # The DID directory's host is the PLC beside the PDS (plc.directory in production).
        ctx = ConnectContext(
            http=http, now=utcnow, redirect_uri="unused:", base_url=pds["PDS_PLC_URL"]
        )
        inputs = {"handle": handle, "app_password": app_password, "service": base}
        [target] = await CONNECTOR.sign_in(ctx, inputs)
        assert target.platform_id == pds["PDS_DID"] and target.handle == handle
        port = urlsplit(base).port
        assert target.base_url == f"http://localhost:{port}"  # from the DID document
        assert target.expires_at is not None
        assert target.expires_at > datetime.now(UTC) + timedelta(minutes=30)
        identity = await CONNECTOR.verify(ctx, target)
        assert identity.platform_id == pds["PDS_DID"]

        publish_ctx = PublishContext(
            http=http,
            media=MediaFetcher(http, max_bytes=1_000_000, allowed_hosts=frozenset()),
            now=utcnow,
        )
        acct = account("bluesky", dict(target.credentials), handle=handle, base_url=target.base_url)
        text = unique("connected with an app password")
        outcome = await BlueskyPublisher().publish(publish_request(acct, text), publish_ctx)
        assert isinstance(outcome, outcomes.Published), outcome
        rkey = outcome.platform_post_id.rsplit("/", 1)[1]
        stored = await xrpc_get(
            publish_ctx,
            base,
            "com.atproto.repo.getRecord",
            repo=pds["PDS_DID"],
            collection=COLLECTION,
            rkey=rkey,
        )
        assert stored.status_code == 200 and stored.json()["value"]["text"] == text

        with pytest.raises(ConnectRefused, match="AuthenticationRequired") as refused:
            await CONNECTOR.sign_in(ctx, {**inputs, "app_password": "aaaa-bbbb-cccc-dddd"})
        assert refused.value.field == "inputs.app_password"

        await CONNECTOR.revoke(ctx, target.credentials)
        again = await http.post(
            f"{base}/xrpc/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {target.credentials['refresh_jwt']}"},
        )
        assert again.status_code == 400 and again.json()["error"] == "ExpiredToken"
