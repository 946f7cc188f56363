"""Account URLs pointing inside the network, through real passes and the real API: a listener on
loopback stands for the metadata service, Redis or an admin port. Without SANDBOX_URL and an
allow-list, nothing reaches it, whatever spelling the URL uses; the deliveries fail saying why."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from postpilot.publishers.transport import NotPublicAddress
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.scheduler.passes import run_pass
from postpilot.store import workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account, Delivery
from tests.factories import cipher, due_posts
from tests.helpers import api_server, make_settings, mastodon_account

SECRET = "INTERNAL-ONLY-ANSWER"


@dataclass
class Listener:
    """An HTTP server on a loopback address that answers everything, and remembers it."""

    host: str
    port: int
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _serve(host: str) -> tuple[ThreadingHTTPServer, Listener]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family

    listener = Listener(host, 0)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            auth = self.headers.get("authorization") or ""
            listener.requests.append((self.command, self.path, auth))
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/redirect?to="))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"id": "1", "ok": True, "secret": SECRET}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = Server((host, 0), Handler)
    listener.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, listener


@pytest.fixture(scope="module")
def v4() -> Iterator[Listener]:
    server, listener = _serve("127.0.0.1")
    yield listener
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def v6() -> Iterator[Listener | None]:
    try:
        server, listener = _serve("::1")
    except OSError:  # no IPv6 loopback on this machine
        yield None
        return
    yield listener
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _forget(v4: Listener, v6: Listener | None) -> None:
    v4.requests.clear()
    if v6 is not None:
        v6.requests.clear()


def hostile_accounts(v4: Listener, v6: Listener | None) -> list[dict[str, Any]]:
    """One account per platform, each naming the listener in another spelling."""
    port = v4.port
    matrix_base = f"http://{v6.netloc}" if v6 else f"http://127.0.0.1:{port}"
    return [
        {
            "platform": "mastodon",
            "base_url": f"http://127.0.0.1:{port}",
            "credentials": {"access_token": "tenant-token"},
        },
        {  # a name: only resolving it shows where it goes
            "platform": "x",
            "base_url": f"http://localhost:{port}",
            "credentials": {"access_token": "tenant-token"},
        },
        {
            "platform": "telegram",
            "base_url": f"http://2130706433:{port}",  # 127.0.0.1 in decimal
            "credentials": {"bot_token": "123:tenant-token"},
            "options": {"chat_id": "1"},
        },
        {
            "platform": "discord",
            "base_url": f"http://[::ffff:127.0.0.1]:{port}",
            "credentials": {"webhook_id": "1", "webhook_token": "tenant-token"},
        },
        {
            "platform": "slack",
            "base_url": f"http://0x7f.1:{port}",  # 127.0.0.1 in hex, short form
            "credentials": {"access_token": "tenant-token"},
            "options": {"channel": "C1"},
        },
        {
            "platform": "matrix",
            "base_url": matrix_base,
            "credentials": {"access_token": "tenant-token"},
            "options": {"room_id": "!room:example.org"},
        },
        {  # the PDS named by a credential, with a fragment that would take over the path
            "platform": "bluesky",
            "base_url": None,
            "credentials": {
                "did": "did:plc:tenant",
                "access_jwt": "tenant-token",
                "pds_url": f"http://localhost:{port}/admin#",
            },
        },
        {
            "platform": "bluesky",
            "base_url": None,
            "credentials": {
                "did": "did:plc:tenant",
                "access_jwt": "tenant-token",
                "pds_url": f"http://127.0.0.1:{port}",
            },
        },
    ]


async def store_accounts(db: Database, specs: list[dict[str, Any]]) -> tuple[str, list[Account]]:
    """Written to the database directly: rows saved before the API checked URLs."""
    async with db.transaction() as session:
        created = await workspaces.create_workspace(session, name="hostile")
        accounts = [
            Account(
                workspace_id=created.workspace.id,
                platform=spec["platform"],
                handle=f"@{spec['platform']}{i}",
                base_url=spec["base_url"],
                options=spec.get("options", {}),
                credentials=cipher.encrypt(spec["credentials"]),
            )
            for i, spec in enumerate(specs)
        ]
        session.add_all(accounts)
    return created.workspace.id, accounts


@pytest.fixture
async def bare_runtime(sqlite_db: Database) -> AsyncIterator[ServiceRuntime]:
    """Settings as in production: no SANDBOX_URL, no allow-list."""
    runtime = build_runtime(make_settings(sqlite_db), db=sqlite_db)
    assert runtime.settings.SANDBOX_URL is None
    yield runtime
    await runtime.close()


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_no_request_reaches_a_private_address(
    bare_runtime: ServiceRuntime, v4: Listener, v6: Listener | None, scheduler: str
) -> None:
    specs = hostile_accounts(v4, v6)
    workspace, accounts = await store_accounts(bare_runtime.db, specs)
    await due_posts(bare_runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))

    report = await run_pass(bare_runtime, scheduler=scheduler, limit=50)

    assert report.claimed == len(specs)
    assert v4.requests == [] and (v6 is None or v6.requests == [])
    async with bare_runtime.db.session() as session:
        rows = (
            await session.execute(select(Delivery.platform, Delivery.status, Delivery.last_error))
        ).all()
    for platform, status, error in rows:
        assert status == "failed", (platform, status, error)
        assert error is not None, platform
        # a base URL that could take over the path is not used at all
        assert "not a public address" in error or "not a valid http(s) URL" in error, error
        assert SECRET not in error and "tenant-token" not in error


async def test_a_login_to_a_private_address_is_not_sent_either(
    bare_runtime: ServiceRuntime, v4: Listener
) -> None:
    """An account with only a password signs in first (a token refresh): refused too, and the
    delivery says why (it is retried: the account itself may be fixed)."""
    spec = {
        "platform": "bluesky",
        "base_url": f"http://127.0.0.1:{v4.port}",
        "credentials": {"identifier": "me", "password": "tenant-token"},
    }
    workspace, accounts = await store_accounts(bare_runtime.db, [spec])
    await due_posts(bare_runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))
    await run_pass(bare_runtime, scheduler="optimized", limit=10)
    assert v4.requests == []
    async with bare_runtime.db.session() as session:
        delivery = (await session.execute(select(Delivery))).scalar_one()
    assert delivery.last_error is not None and "not a public address" in delivery.last_error
    assert "tenant-token" not in delivery.last_error


async def test_the_allow_list_lets_a_self_hosted_instance_through(
    sqlite_db: Database, v4: Listener
) -> None:
    settings = make_settings(sqlite_db, PRIVATE_HOSTS_ALLOWED=f"127.0.0.1:{v4.port}")
    runtime = build_runtime(settings, db=sqlite_db)
    try:
        specs = hostile_accounts(v4, None)[:1]  # mastodon on 127.0.0.1:<port>
        workspace, accounts = await store_accounts(runtime.db, specs)
        await due_posts(runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))
        report = await run_pass(runtime, scheduler="optimized", limit=10)
    finally:
        await runtime.close()
    assert report.published == 1, report
    assert v4.requests == [("POST", "/api/v1/statuses", "Bearer tenant-token")]


async def test_every_redirect_hop_is_checked(
    sqlite_db: Database, v4: Listener, v6: Listener | None
) -> None:
    """The first hop is an allowed host; where it redirects to is not, and is never reached."""
    settings = make_settings(sqlite_db, PRIVATE_HOSTS_ALLOWED=f"127.0.0.1:{v4.port}")
    runtime = build_runtime(settings, db=sqlite_db)
    inside = f"http://localhost:{v4.port + 1 if v6 is None else v6.port}/admin"
    try:
        with pytest.raises(NotPublicAddress, match="not a public address"):
            await runtime.http.get(
                f"http://127.0.0.1:{v4.port}/redirect?to={inside}", follow_redirects=True
            )
        allowed = await runtime.http.get(f"http://127.0.0.1:{v4.port}/ok")
    finally:
        await runtime.close()
    assert allowed.status_code == 200
    assert [path for _, path, _ in v4.requests] == [f"/redirect?to={inside}", "/ok"]
    assert v6 is None or v6.requests == []


async def test_the_api_refuses_account_urls_that_name_private_or_odd_places(
    sqlite_db: Database, v4: Listener
) -> None:
    async with api_server(sqlite_db, PRIVATE_HOSTS_ALLOWED="10.0.0.7:8080") as api:
        refused: list[tuple[dict[str, Any], str, str]] = [
            ({"base_url": "http://169.254.169.254"}, "base_url", "not a public address"),
            ({"base_url": "http://[::ffff:10.0.0.1]:8080"}, "base_url", "not a public address"),
            ({"base_url": "http://2130706433:6379"}, "base_url", "not a public address"),
            ({"base_url": "http://localhost:6379"}, "base_url", "not a public address"),
            ({"base_url": "https://mastodon.example/#"}, "base_url", "fragment"),
            ({"base_url": "https://mastodon.example/api?x="}, "base_url", "query"),
            ({"base_url": "https://mastodon.example/a/../b"}, "base_url", ".."),
            ({"base_url": "https://me:pw@mastodon.example"}, "base_url", "credentials"),
            ({"base_url": "https://mastodon.example:99999"}, "base_url", "not a valid URL"),
        ]
        for extra, field_name, why in refused:
            body = {
                "platform": "mastodon",
                "handle": "@me",
                "credentials": {"access_token": "t"},
                **extra,
            }
            response = await api.client.post("/api/accounts", json=body)
            assert response.status_code == 422, (extra, response.text)
            error = response.json()["error"]
            assert field_name in error["message"] and why in error["message"], error
        pds = await api.client.post(
            "/api/accounts",
            json={
                "platform": "bluesky",
                "handle": "me.example",
                "credentials": {"identifier": "me", "password": "p", "pds_url": "http://10.0.0.1"},
            },
        )
        assert pds.status_code == 422 and "credentials.pds_url" in pds.json()["error"]["message"]
        assert (await api.client.get("/api/accounts")).json() == []  # nothing was saved

        allowed = await api.client.post(
            "/api/accounts",
            json={
                "platform": "mastodon",
                "handle": "@me",
                "base_url": "http://10.0.0.7:8080/",
                "credentials": {"access_token": "t"},
                "verify": False,  # nothing listens there: only where it may point is tested
            },
        )
        assert allowed.status_code == 201, allowed.text
        account = allowed.json()
        assert account["base_url"] == "http://10.0.0.7:8080"
        moved = await api.client.patch(
            f"/api/accounts/{account['id']}", json={"base_url": "http://[::1]:6379"}
        )
        assert moved.status_code == 422 and "base_url" in moved.json()["error"]["message"]
        again = await api.client.get(f"/api/accounts/{account['id']}")
        assert again.json()["base_url"] == "http://10.0.0.7:8080"


async def test_the_api_refuses_media_urls_that_can_never_be_fetched(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:
        target = await mastodon_account(api)
        for bad in (
            "http://example.com:99999/a.png",
            "http://[::1/a.png",
            "http://127.0.0.1/a.png",
            "http://[::ffff:169.254.169.254]/latest",
            "ftp://example.com/a.png",
            "http://user:pw@example.com/a.png",
        ):
            response = await api.client.post(
                "/api/posts", json={"text": "hi", "targets": [target], "media_urls": [bad]}
            )
            assert response.status_code == 422, (bad, response.text)
            assert bad in response.json()["error"]["message"], response.text
        assert (await api.client.get("/api/posts")).json()["items"] == []
        good = await api.client.post(
            "/api/posts",
            json={"text": "hi", "targets": [target], "media_urls": ["https://cdn.example/a.png"]},
        )
        assert good.status_code == 201, good.text
        edited = await api.client.patch(
            f"/api/posts/{good.json()['id']}", json={"media_urls": ["http://10.1.2.3/a.png"]}
        )
        assert edited.status_code == 422 and "10.1.2.3" in edited.json()["error"]["message"]
