"""The connect service's pure parts (state and PKCE values, how long a flow stays open, the
redirect to a success URL, what a person pastes back), and a flow's expiry on a real SQLite
file under a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from postpilot.connect import apps, flows
from postpilot.connect.base import AppNotConfigured, Target
from postpilot.connect.outcomes import InvalidState
from postpilot.connect.service import FORGET_AFTER, ConnectService
from postpilot.runtime import build_runtime
from postpilot.settings import SECRET_NAMES
from postpilot.store.database import Database
from postpilot.store.tables import ConnectFlow
from tests.helpers import make_settings, new_workspace

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_state_and_pkce_values() -> None:
    states = {flows.new_state() for _ in range(50)}
    assert len(states) == 50 and all(len(s) == flows.STATE_LENGTH for s in states)
    verifier = flows.new_verifier()
    assert 43 <= len(verifier) <= 128
    assert flows.challenge(verifier) == create_s256_code_challenge(verifier)
    assert flows.challenge(verifier) != verifier


def test_a_flow_is_open_for_ten_minutes_and_once() -> None:
    ends = flows.expires_at(T0)
    assert flows.is_open(expires=ends, used=None, now=T0 + timedelta(minutes=9, seconds=59))
    assert not flows.is_open(expires=ends, used=None, now=T0 + timedelta(minutes=10))
    assert not flows.is_open(expires=ends, used=T0, now=T0 + timedelta(seconds=1))


def test_redirects() -> None:
    assert flows.callback_url("https://pp.example/") == "https://pp.example/api/connect/callback"
    assert flows.with_query("https://app.example/done", {"account_id": "a b"}) == (
        "https://app.example/done?account_id=a+b"
    )
    kept = flows.with_query("https://app.example/done?tab=2#top", {"error": "access_denied"})
    assert kept == "https://app.example/done?tab=2&error=access_denied#top"


def test_what_a_person_pastes() -> None:
    url = "http://127.0.0.1:8000/api/connect/callback?code=abc&state=xyz"
    assert flows.read_pasted(url) == flows.Pasted("xyz", "abc", None, None)
    assert flows.read_pasted("  abc  ") == flows.Pasted(None, "abc", None, None)
    denied = flows.read_pasted("?error=access_denied&error_description=no&state=s")
    assert (denied.error, denied.error_description, denied.code) == ("access_denied", "no", None)


def test_targets_survive_the_choice_step_encrypted_as_json() -> None:
    target = Target(
        platform_id="p1",
        name="Page",
        handle="@page",
        credentials={"access_token": "t"},
        options={"page_id": "p1"},
        expires_at=T0,
    )
    assert flows.targets_from_json(flows.targets_to_json([target])) == [target]


def test_app_settings(sqlite_db: Database) -> None:
    bare = make_settings(sqlite_db)
    with pytest.raises(AppNotConfigured, match="set CONNECT_SLACK_CLIENT_ID and CONNECT_SLACK"):
        apps.required_app(bare, "slack")
    half = make_settings(sqlite_db, CONNECT_SLACK_CLIENT_ID="id")  # the secret is needed too
    assert apps.configured_app(half, "slack") is None
    x_public = make_settings(sqlite_db, CONNECT_X_CLIENT_ID="id")  # a public client
    assert apps.required_app(x_public, "x") == apps.App("id", None)
    sandboxed = make_settings(sqlite_db, SANDBOX_URL="http://127.0.0.1:9")
    assert apps.required_app(sandboxed, "instagram").client_id == apps.SANDBOX_CLIENT_ID
    # `config show` masks the secrets, not the ids.
    assert {"CONNECT_X_CLIENT_SECRET", "CONNECT_FACEBOOK_APP_SECRET"} <= SECRET_NAMES
    assert "CONNECT_X_CLIENT_ID" not in SECRET_NAMES


async def test_an_expired_flow_is_refused_and_stays_refused(sqlite_db: Database) -> None:
    now = [T0]
    settings = make_settings(sqlite_db, CONNECT_X_CLIENT_ID="app", PUBLIC_BASE_URL="https://pp.ex")
    runtime = build_runtime(settings, db=sqlite_db, clock=lambda: now[0])
    try:
        workspace, _ = await new_workspace(sqlite_db)
        service = ConnectService(runtime)
        started = await service.start(workspace_id=workspace, platform="x", inputs={}, actor="t")
        assert started.expires_at == T0 + flows.FLOW_TTL
        query = parse_qs(urlsplit(started.authorize_url).query)
        assert query["redirect_uri"] == ["https://pp.ex/api/connect/callback"]
        assert query["code_challenge_method"] == ["S256"]

        now[0] = T0 + flows.FLOW_TTL
        with pytest.raises(InvalidState, match="expired"):
            await service.callback(state=query["state"][0], code="any")
        with pytest.raises(InvalidState, match="not one we issued"):
            await service.callback(state="made-up", code="any")

        # A day on, the next start forgets it.
        now[0] = T0 + flows.FLOW_TTL + FORGET_AFTER + timedelta(seconds=1)
        await service.start(workspace_id=workspace, platform="x", inputs={}, actor="t")
        async with sqlite_db.session() as session:
            kept = (await session.scalars(select(ConnectFlow.id))).all()
        assert started.flow_id not in kept and len(kept) == 1
    finally:
        await runtime.close()
