"""Connecting accounts through the API process and the sandbox process, as a person does: start,
the platform's consent page (clicked, or answered at once), our callback, a verified account,
and a post the scheduler publishes with what the connect stored. Then the refusals, each with a
message a person can act on, and nothing connected."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, ConnectApp, ConnectFlow
from tests.helpers import ApiServer, api_server

SUCCESS_URL = "https://app.example/connected?from=postpilot"


async def consent(authorize_url: str, *, allow: bool = True) -> str:
    """Open the platform's authorize URL as a browser would; on a consent page, click Allow
    (or Deny). Returns the query the platform sends back to our callback."""
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(authorize_url)
        if page.status_code == 200:  # the consent page: post its form
            form = re.search(r'name="consent" value="([^"]+)"', page.text)
            assert form is not None, page.text
            action = re.search(r'action="([^"]+)"', page.text)
            assert action is not None
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
            page = await browser.post(
                origin + action.group(1),
                data={"consent": form.group(1), "decision": "approve" if allow else "deny"},
            )
        assert page.status_code == 302, page.text
        location = page.headers["location"]
        assert location.startswith("http://127.0.0.1:8000/api/connect/callback?"), location
        return urlsplit(location).query


async def callback(api: ApiServer, query: str) -> httpx.Response:
    """The platform's redirect reaches our callback: no API key, the state is the credential."""
    return await api.client_for(None).get(f"/api/connect/callback?{query}")


async def start(api: ApiServer, platform: str, **body: Any) -> dict[str, Any]:
    started = await api.client.post(f"/api/connect/{platform}", json=body)
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "authorize"
    return dict(started.json())


async def connect(api: ApiServer, platform: str, **body: Any) -> dict[str, Any]:
    """The whole OAuth flow; the connected account."""
    started = await start(api, platform, **body)
    answer = await callback(api, await consent(started["authorize_url"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "done", answer.text
    return dict(answer.json()["account"])


async def publish(api: ApiServer, account_id: str, text: str) -> dict[str, Any]:
    """A post to the account now, and one pass of the scheduler; its only target."""
    created = await api.client.post("/api/posts", json={"text": text, "targets": [account_id]})
    assert created.status_code == 201, created.text
    ran = await api.client.post("/api/cron/scheduler", headers=api.cron(), json={"limit": 10})
    assert ran.status_code == 200, ran.text
    post = (await api.client.get(f"/api/posts/{created.json()['id']}")).json()
    (target,) = post["targets"]
    return dict(target)


async def count(db: Database, model: type, *where: Any) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int((await session.execute(query)).scalar_one())


async def test_mastodon_through_the_consent_page_then_a_post_goes_out(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        instance = sandbox.platform_url("mastodon")
        listed = {p["platform"]: p for p in (await api.client.get("/api/connect")).json()}
        assert listed["mastodon"]["start_inputs"][0]["name"] == "instance"
        assert listed["mastodon"]["redirect_uri"] == "http://127.0.0.1:8000/api/connect/callback"

        started = await start(api, "mastodon", inputs={"instance": instance})
        assert started["authorize_url"].startswith(f"{instance}/oauth/authorize?")
        assert "code_challenge=" in started["authorize_url"]  # PKCE, S256
        account = await connect(api, "mastodon", inputs={"instance": instance})
        assert account["status"] == "active" and account["base_url"] == instance
        assert account["handle"]

        target = await publish(api, account["id"], "connected, then published")
        assert target["status"] == "published", target
        (record,) = sandbox.records("mastodon")
        assert record["text"] == "connected, then published"

        # The same person again: the same account, updated, and the instance's app reused.
        again = await connect(api, "mastodon", inputs={"instance": instance})
        assert again["id"] == account["id"]
        assert await count(sqlite_db, Account) == 1
        assert await count(sqlite_db, ConnectApp) == 1
        apps = [r for r in sandbox.requests("mastodon") if r["path"].endswith("/api/v1/apps")]
        assert len(apps) == 1
        events = await api.client.get("/api/activity")
        assert events.status_code == 200
        assert {"account_created", "account_reconnected"} <= {e["event"] for e in events.json()}

        # The flows keep a hash of their state and the verifier encrypted; the first one was
        # started and never finished.
        async with sqlite_db.session() as session:
            flows = (await session.scalars(select(ConnectFlow))).all()
        assert sorted(f.status for f in flows) == ["done", "done", "pending"]
        for flow in flows:
            state = parse_qs(urlsplit(started["authorize_url"]).query)["state"][0]
            assert flow.state_hash and state not in flow.state_hash
            assert flow.code_verifier and flow.code_verifier.startswith("gAAAA")  # Fernet


async def test_x_with_pkce_and_a_redirect_to_the_success_url(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    sandbox.configure(connect_consent="approve")
    async with api_server(sqlite_db, sandbox) as api:
        started = await start(api, "x", success_url=SUCCESS_URL)
        assert "client_id=postpilot-sandbox" in started["authorize_url"]  # no app configured
        answer = await callback(api, await consent(started["authorize_url"]))
        assert answer.status_code == 303, answer.text
        where = urlsplit(answer.headers["location"])
        assert answer.headers["location"].startswith("https://app.example/connected?from=")
        (account_id,) = parse_qs(where.query)["account_id"]
        account = (await api.client.get(f"/api/accounts/{account_id}")).json()
        assert account["platform"] == "x" and account["token_expires_at"] is not None

        target = await publish(api, account_id, "hello from a connected X account")
        assert target["status"] == "published", target
        assert [r["text"] for r in sandbox.records("x")] == ["hello from a connected X account"]


async def test_direct_telegram_is_checked_live_then_publishes(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        chats = sandbox.configure()["telegram_chats"]
        chat = next(k for k, v in chats.items() if v.get("bot_status") == "administrator")
        made = await api.client.post(
            "/api/connect/telegram",
            json={
                "method": "direct",
                "inputs": {"bot_token": "123456789:AAEdirectConnectTest", "chat": chat},
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "done"
        assert "AAEdirectConnectTest" not in made.text
        account = made.json()["account"]
        target = await publish(api, account["id"], "a bot that may post")
        assert target["status"] == "published", target


async def test_refusals_are_clear_and_connect_nothing(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(any_db, sandbox) as api:
        instance = sandbox.platform_url("mastodon")
        # A state we never issued, and one used already.
        made_up = await callback(api, "state=nope&code=abc")
        assert made_up.status_code == 400
        assert made_up.json()["error"]["code"] == "invalid_state"
        started = await start(api, "mastodon", inputs={"instance": instance})
        query = await consent(started["authorize_url"])
        # The same redirect twice at once (a double click): one of them connects.
        both = await asyncio.gather(callback(api, query), callback(api, query))
        assert sorted(r.status_code for r in both) == [200, 400]
        replayed = await callback(api, query)
        assert replayed.status_code == 400
        assert "already used" in replayed.json()["error"]["message"]

        # The code of a finished flow, brought back with a new flow's state: the platform's
        # refusal, in words.
        second = await start(api, "mastodon", inputs={"instance": instance})
        state = parse_qs(urlsplit(second["authorize_url"]).query)["state"][0]
        code = parse_qs(query)["code"][0]
        reused = await callback(api, f"state={state}&code={code}")
        assert reused.status_code == 422, reused.text
        assert reused.json()["error"]["code"] == "connect_refused"

        # The person says no at the consent page.
        denied = await start(api, "mastodon", inputs={"instance": instance})
        no = await callback(api, await consent(denied["authorize_url"], allow=False))
        assert no.status_code == 400
        assert no.json()["error"]["code"] == "access_denied"
        assert "denied" in no.json()["error"]["message"]
        flow = (await api.client.get(f"/api/connect/flows/{denied['flow_id']}")).json()
        assert flow["status"] == "failed"
        redirected = await start(
            api, "mastodon", inputs={"instance": instance}, success_url=SUCCESS_URL
        )
        to_app = await callback(api, await consent(redirected["authorize_url"], allow=False))
        assert to_app.status_code == 303
        assert parse_qs(urlsplit(to_app.headers["location"]).query)["error"] == ["access_denied"]

        # Inputs: missing, unknown, a private address.
        for body, field in (
            ({"inputs": {}}, "inputs.instance"),
            ({"inputs": {"instance": instance, "extra": "x"}}, "inputs.extra"),
            ({"inputs": {"instance": "http://10.1.2.3"}}, "inputs.instance"),
        ):
            refused = await api.client.post("/api/connect/mastodon", json=body)
            assert refused.status_code == 422, refused.text
            assert field in refused.json()["error"]["message"]
        unknown = await api.client.post("/api/connect/myspace", json={})
        assert unknown.json()["error"]["code"] == "unsupported_platform"
        assert await count(any_db, Account) == 1


async def test_an_app_that_is_not_configured_is_named(sqlite_db: Database) -> None:
    async with api_server(sqlite_db) as api:  # no sandbox, no X app
        listed = {p["platform"]: p for p in (await api.client.get("/api/connect")).json()}
        assert listed["x"]["configured"] is False and listed["mastodon"]["configured"] is True
        refused = await api.client.post("/api/connect/x", json={})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "platform_not_configured"
        assert error["message"] == (
            "x: set CONNECT_X_CLIENT_ID and CONNECT_X_CLIENT_SECRET to connect X accounts"
        )
        assert await count(sqlite_db, ConnectFlow) == 0
    async with api_server(
        sqlite_db, CONNECT_X_CLIENT_ID="my-x-app", CONNECT_X_CLIENT_SECRET="s3cret-value"
    ) as api:
        started = await start(api, "x")
        assert started["authorize_url"].startswith("https://x.com/i/oauth2/authorize?")
        assert "client_id=my-x-app" in started["authorize_url"]
        assert "s3cret" not in started["authorize_url"]


async def test_reconnect_keeps_the_account_and_offers_its_failed_deliveries(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    sandbox.configure(connect_consent="approve")
    async with api_server(sqlite_db, sandbox) as api:
        account = await connect(api, "x")
        # The person removes our app at X: the next publish is refused, the account needs a
        # reconnect, the delivery fails for that reason.
        revoked = httpx.post(
            f"{sandbox.url}/_sandbox/connect/revoke_app",
            json={"platform": "x", "subject": "sandbox-user"},
        )
        assert revoked.status_code == 200 and revoked.json()["tokens"] > 0
        failed = await publish(api, account["id"], "after the app was removed")
        assert failed["status"] == "failed", failed
        stale = (await api.client.get(f"/api/accounts/{account['id']}")).json()
        assert stale["status"] == "needs_reconnect"
        early = await api.client.post(f"/api/accounts/{account['id']}/retry-failed")
        assert early.status_code == 409

        again = await api.client.post(f"/api/accounts/{account['id']}/reconnect", json={})
        assert again.status_code == 201, again.text
        answer = await callback(api, await consent(again.json()["authorize_url"]))
        assert answer.status_code == 200, answer.text
        assert answer.json()["account"]["id"] == account["id"]
        assert answer.json()["account"]["status"] == "active"
        assert answer.json()["retryable_delivery_ids"] == [failed["id"]]
        assert await count(sqlite_db, Account) == 1

        retried = await api.client.post(f"/api/accounts/{account['id']}/retry-failed")
        assert retried.json() == {"retried": [failed["id"]]}
        ran = await api.client.post("/api/cron/scheduler", headers=api.cron(), json={"limit": 10})
        assert ran.json()["published"] == 1, ran.text
        assert [r["text"] for r in sandbox.records("x")] == ["after the app was removed"]


async def test_check_and_disconnect(sqlite_db: Database, sandbox: SandboxClient) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        instance = sandbox.platform_url("mastodon")
        account = await connect(api, "mastodon", inputs={"instance": instance})
        checked = await api.client.post(f"/api/accounts/{account['id']}/check")
        assert checked.status_code == 200 and checked.json()["ok"] is True, checked.text

        # The person removes our app at the instance: the check says so, in the platform's
        # words, and the account needs a reconnect.
        httpx.post(
            f"{sandbox.url}/_sandbox/connect/revoke_app",
            json={"platform": "mastodon", "subject": "sandbox-user"},
        ).raise_for_status()
        refused = (await api.client.post(f"/api/accounts/{account['id']}/check")).json()
        assert refused["ok"] is False and "reconnect" in refused["message"]
        assert refused["account"]["status"] == "needs_reconnect"
        assert refused["account"]["status_reason"] == refused["message"]

        # Disconnecting revokes the token at the instance; the account is gone from the list.
        gone = await api.client.delete(f"/api/accounts/{account['id']}")
        assert gone.status_code == 204
        revokes = [r for r in sandbox.requests("mastodon") if r["path"].endswith("/oauth/revoke")]
        assert len(revokes) == 1
        assert (await api.client.get("/api/accounts")).json() == []
        async with sqlite_db.session() as session:
            details = (await session.scalars(select(Activity.detail))).all()
        assert any("revoked at mastodon" in d for d in details), details


async def test_pasted_credentials_are_checked_live(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    async with api_server(sqlite_db, sandbox) as api:
        token = sandbox.issue_token("mastodon")["access_token"]
        sandbox.revoke(token)
        body = {
            "platform": "mastodon",
            "handle": "@me",
            "base_url": sandbox.platform_url("mastodon"),
            "credentials": {"access_token": token},
        }
        refused = await api.client.post("/api/accounts", json=body)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "connect_refused"
        assert error["details"][0]["field"].startswith("credentials")
        assert token not in refused.text
        assert await count(sqlite_db, Account) == 0

        imported = await api.client.post("/api/accounts", json={**body, "verify": False})
        assert imported.status_code == 201, imported.text
        async with sqlite_db.session() as session:
            details = (await session.scalars(select(Activity.detail))).all()
        assert any("not checked live (verify=false)" in d for d in details)


async def test_linkedin_member_and_organization_are_a_choice(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    sandbox.configure(connect_consent="approve")
    async with api_server(sqlite_db, sandbox) as api:
        started = await start(api, "linkedin", success_url=SUCCESS_URL)
        answer = await callback(api, await consent(started["authorize_url"]))
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["status"] == ["choosing"]
        (flow_id,) = query["flow_id"]
        flow = (await api.client.get(f"/api/connect/flows/{flow_id}")).json()
        assert flow["status"] == "choosing" and flow["accounts"] == []
        choices = {c["platform_id"]: c for c in flow["choices"]}
        assert len(choices) == 2 and "token" not in str(flow)
        organization, member = sorted(choices)  # urn:li:organization < urn:li:person
        assert organization.startswith("urn:li:organization:")
        assert await count(sqlite_db, Account) == 0  # nothing until the person picks

        wrong = await api.client.post(
            f"/api/connect/flows/{flow_id}/choose", json={"platform_ids": ["urn:li:other"]}
        )
        assert wrong.status_code == 422 and "pick among" in wrong.json()["error"]["message"]
        chosen = await api.client.post(
            f"/api/connect/flows/{flow_id}/choose", json={"platform_ids": [organization]}
        )
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["status"] == "done"
        (account,) = chosen.json()["accounts"]
        again = await api.client.post(
            f"/api/connect/flows/{flow_id}/choose", json={"platform_ids": [member]}
        )
        assert again.status_code == 409

        target = await publish(api, account["id"], "news from the company page")
        assert target["status"] == "published", target
        assert [r["text"] for r in sandbox.records("linkedin")] == ["news from the company page"]


async def test_disconnecting_one_of_a_logins_accounts_keeps_the_grant_for_the_others(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    """LinkedIn's member and organization accounts from one login hold one token: the first
    disconnect must not revoke it, the last one does."""
    sandbox.configure(connect_consent="approve")
    async with api_server(sqlite_db, sandbox) as api:
        started = await start(api, "linkedin")
        answer = await callback(api, await consent(started["authorize_url"]))
        flow_id = answer.json()["flow_id"]
        flow = (await api.client.get(f"/api/connect/flows/{flow_id}")).json()
        chosen = await api.client.post(
            f"/api/connect/flows/{flow_id}/choose",
            json={"platform_ids": [c["platform_id"] for c in flow["choices"]]},
        )
        organization, member = sorted(chosen.json()["accounts"], key=lambda a: a["platform_id"])

        def revokes() -> int:
            return sum(r["path"].endswith("/oauth/v2/revoke") for r in sandbox.requests("linkedin"))

        assert (await api.client.delete(f"/api/accounts/{organization['id']}")).status_code == 204
        assert revokes() == 0
        target = await publish(api, member["id"], "the member still posts")
        assert target["status"] == "published", target

        assert (await api.client.delete(f"/api/accounts/{member['id']}")).status_code == 204
        assert revokes() >= 1
        async with sqlite_db.session() as session:
            details = (await session.scalars(select(Activity.detail))).all()
        assert any("another account still uses the same grant" in d for d in details), details
