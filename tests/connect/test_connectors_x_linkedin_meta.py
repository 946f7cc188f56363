"""Connect flows of X, LinkedIn, Facebook Pages, Instagram and Threads against the sandbox
process: the connector's authorize URL, the sandbox's consent step, the callback's code, the
exchange, the targets and the live verify; then the platform's refusals, each with a message a
person can act on; and a post published with the credentials a connect produced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from postpilot.connect.base import (
    App,
    ConnectContext,
    ConnectRefused,
    Grant,
    OAuthConnector,
    Target,
)
from postpilot.connect.platforms import facebook, instagram, linkedin, threads, x
from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext
from postpilot.publishers.facebook import FacebookPublisher
from postpilot.publishers.instagram import InstagramPublisher
from postpilot.publishers.linkedin import LinkedInPublisher
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.threads import ThreadsPublisher
from postpilot.publishers.x import XPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import account, publish_request, unique

REDIRECT_URI = "https://postpilot.example/connect/callback"


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def context(
    sandbox: SandboxClient, http: httpx.AsyncClient, platform: str, app: App | None
) -> ConnectContext:
    return ConnectContext(
        http=http,
        now=utcnow,
        redirect_uri=REDIRECT_URI,
        app=app,
        base_url=sandbox.platform_url(platform),
    )


def publish_context(
    sandbox: SandboxClient, http: httpx.AsyncClient, platform: str
) -> PublishContext:
    media = MediaFetcher(
        http, max_bytes=64 * 1024, allowed_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5
    )
    return PublishContext(
        http=http, media=media, now=utcnow, base_urls={platform: sandbox.platform_url(platform)}
    )


class Flow:
    """One connect attempt as the service runs it: state, PKCE verifier, authorize URL."""

    def __init__(self, connector: OAuthConnector, ctx: ConnectContext) -> None:
        self.connector, self.ctx = connector, ctx
        self.state = generate_token(24)
        self.verifier = generate_token(48) if connector.pkce else None
        challenge = create_s256_code_challenge(self.verifier) if self.verifier else None
        self.url = connector.authorize_url(
            ctx, state=self.state, code_challenge=challenge, inputs={}
        )

    async def consent(self) -> dict[str, str]:
        """Open the authorize URL (the sandbox answers at once, per `connect_consent`) and
        read the callback's query from the redirect."""
        response = await self.ctx.http.get(self.url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["state"] == self.state
        return query

    async def grant(self) -> Grant:
        code = (await self.consent())["code"]
        return await self.connector.exchange(
            self.ctx, code=code, code_verifier=self.verifier, inputs={}
        )


def approve(sandbox: SandboxClient, **settings: Any) -> None:
    sandbox.configure(connect_consent="approve", **settings)


def revoke_app(sandbox: SandboxClient, platform: str, subject: str) -> None:
    response = httpx.post(
        f"{sandbox.url}/_sandbox/connect/revoke_app",
        json={"platform": platform, "subject": subject},
    )
    response.raise_for_status()


X_APP = App("postpilot-x", "x-secret")


def x_client(sandbox: SandboxClient) -> None:
    """Register the X app at the sandbox: a confidential client with one redirect URI."""
    approve(
        sandbox,
        oauth_clients={
            X_APP.client_id: {"secret": X_APP.client_secret, "redirect_uris": [REDIRECT_URI]}
        },
    )


# --- X -------------------------------------------------------------------------------------


async def test_x_connects_verifies_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    x_client(sandbox)
    ctx = context(sandbox, http, "x", X_APP)
    flow = Flow(x.CONNECTOR, ctx)
    query = parse_qs(urlsplit(flow.url).query)
    assert urlsplit(flow.url).path == "/x/i/oauth2/authorize"
    assert query["code_challenge_method"] == ["S256"]
    assert "offline.access" in query["scope"][0].split()

    grant = await flow.grant()
    assert grant.refresh_token
    assert grant.expires_at is not None
    assert grant.expires_at - utcnow() > timedelta(hours=1, minutes=55)
    [target] = await x.CONNECTOR.targets(ctx, grant, {})
    assert target.handle == "sandbox-user"
    assert target.credentials == {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "client_id": X_APP.client_id,
        "client_secret": X_APP.client_secret,
    }
    identity = await x.CONNECTOR.verify(ctx, target)
    assert identity.platform_id == target.platform_id
    assert identity.platform_id.isdigit()

    acct = account("x", target.credentials, handle=target.handle)
    text = unique("connected x")
    outcome = await XPublisher().publish(
        publish_request(acct, text), publish_context(sandbox, http, "x")
    )
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("x")
    assert (record["text"], record["account"]) == (text, "sandbox-user")
    # The publisher's refresh (Basic auth, as the connected credentials allow) rotates the pair.
    refreshed = await XPublisher().refresh(acct, publish_context(sandbox, http, "x"))
    assert refreshed.credentials["refresh_token"] != grant.refresh_token  # type: ignore[union-attr]


async def test_x_consent_page_can_be_clicked(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    sandbox.configure(connect_consent="ask")
    ctx = context(sandbox, http, "x", X_APP)
    flow = Flow(x.CONNECTOR, ctx)
    page = await http.get(flow.url)
    assert page.status_code == 200
    consent_id = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert consent_id is not None
    decided = await http.post(
        f"{sandbox.url}/_sandbox/oauth/decide",
        data={"consent": consent_id.group(1), "decision": "approve"},
    )
    assert decided.status_code == 302
    code = parse_qs(urlsplit(decided.headers["location"]).query)["code"][0]
    grant = await x.CONNECTOR.exchange(ctx, code=code, code_verifier=flow.verifier, inputs={})
    assert grant.access_token


async def test_x_replayed_code_is_refused(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    x_client(sandbox)
    flow = Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP))
    code = (await flow.consent())["code"]
    await x.CONNECTOR.exchange(flow.ctx, code=code, code_verifier=flow.verifier, inputs={})
    with pytest.raises(ConnectRefused, match="refused the authorization code: it was already used"):
        await x.CONNECTOR.exchange(flow.ctx, code=code, code_verifier=flow.verifier, inputs={})


async def test_x_expired_code_is_refused(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    x_client(sandbox)
    sandbox.configure(code_ttl_seconds={"x": 0})  # X allows 30 s; this code is already past it
    flow = Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP))
    code = (await flow.consent())["code"]
    with pytest.raises(ConnectRefused, match="has expired"):
        await x.CONNECTOR.exchange(flow.ctx, code=code, code_verifier=flow.verifier, inputs={})


async def test_x_wrong_pkce_verifier_is_refused(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    x_client(sandbox)
    flow = Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP))
    code = (await flow.consent())["code"]
    with pytest.raises(ConnectRefused, match="PKCE code verifier"):
        await x.CONNECTOR.exchange(flow.ctx, code=code, code_verifier=generate_token(48), inputs={})


async def test_x_redirect_uri_must_match(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    x_client(sandbox)
    ctx = context(sandbox, http, "x", X_APP)
    ctx.redirect_uri = "https://elsewhere.example/callback"
    page = await http.get(Flow(x.CONNECTOR, ctx).url)
    assert page.status_code == 400  # not a registered redirect URI: no redirect at all
    # A code issued for one redirect URI is refused on the token call with another.
    flow = Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP))
    code = (await flow.consent())["code"]
    with pytest.raises(ConnectRefused, match="another redirect URI"):
        await x.CONNECTOR.exchange(ctx, code=code, code_verifier=flow.verifier, inputs={})


async def test_x_wrong_client_secret_is_refused(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    x_client(sandbox)
    flow = Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP))
    code = (await flow.consent())["code"]
    wrong = context(sandbox, http, "x", App(X_APP.client_id, "not-the-secret"))
    with pytest.raises(ConnectRefused, match="client id and secret"):
        await x.CONNECTOR.exchange(wrong, code=code, code_verifier=flow.verifier, inputs={})


async def test_x_denied_consent_comes_back_as_access_denied(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    sandbox.configure(connect_consent="deny")
    query = await Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP)).consent()
    assert query["error"] == "access_denied"
    assert "code" not in query


async def test_x_missing_scope_is_named(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    x_client(sandbox)
    sandbox.configure(connect_declined_scopes={"x": ["offline.access"]})
    with pytest.raises(ConnectRefused, match=r"did not grant the scope offline\.access"):
        await Flow(x.CONNECTOR, context(sandbox, http, "x", X_APP)).grant()


async def test_x_revoked_app_fails_verify_and_disconnect_revokes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    x_client(sandbox)
    ctx = context(sandbox, http, "x", X_APP)
    [target] = await x.CONNECTOR.targets(ctx, await Flow(x.CONNECTOR, ctx).grant(), {})
    revoke_app(sandbox, "x", "sandbox-user")
    with pytest.raises(ConnectRefused, match="revoked") as refused:
        await x.CONNECTOR.verify(ctx, target)
    assert refused.value.field == "credentials.access_token"

    [target] = await x.CONNECTOR.targets(ctx, await Flow(x.CONNECTOR, ctx).grant(), {})
    await x.CONNECTOR.revoke(ctx, target.credentials)
    with pytest.raises(ConnectRefused):
        await x.CONNECTOR.verify(ctx, target)


async def test_x_spent_refresh_token_is_answered_like_x(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    x_client(sandbox)
    ctx = context(sandbox, http, "x", X_APP)
    grant = await Flow(x.CONNECTOR, ctx).grant()
    form = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token or ""}
    auth = httpx.BasicAuth(X_APP.client_id, X_APP.client_secret or "")
    first = await http.post(ctx.url(x.API_HOST, "/2/oauth2/token"), data=form, auth=auth)
    assert first.status_code == 200
    again = await http.post(ctx.url(x.API_HOST, "/2/oauth2/token"), data=form, auth=auth)
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }


# --- LinkedIn ------------------------------------------------------------------------------

LINKEDIN_APP = App("postpilot-linkedin", "linkedin-secret")


def linkedin_client(sandbox: SandboxClient) -> None:
    approve(
        sandbox,
        oauth_clients={
            LINKEDIN_APP.client_id: {
                "secret": LINKEDIN_APP.client_secret,
                "redirect_uris": [REDIRECT_URI],
            }
        },
    )


async def test_linkedin_connects_member_and_organization_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    linkedin_client(sandbox)
    sandbox.configure(
        connect_organizations={
            "sandbox-user": [
                {"id": 101, "name": "Acme", "role": "ADMINISTRATOR"},
                {"id": 102, "name": "Watched", "role": "ANALYST"},
            ]
        }
    )
    ctx = context(sandbox, http, "linkedin", LINKEDIN_APP)
    flow = Flow(linkedin.CONNECTOR, ctx)
    assert urlsplit(flow.url).path == "/linkedin/oauth/v2/authorization"
    assert "code_challenge" not in flow.url
    grant = await flow.grant()
    assert grant.expires_at is not None and grant.expires_at - utcnow() > timedelta(days=59)
    member, org = await linkedin.CONNECTOR.targets(ctx, grant, {})  # the analyst role is left out
    assert member.platform_id.startswith("urn:li:person:")
    assert member.options == {"author_urn": member.platform_id}
    assert (org.platform_id, org.name, org.handle) == ("urn:li:organization:101", "Acme", "acme")
    assert org.credentials == {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "client_id": LINKEDIN_APP.client_id,
        "client_secret": LINKEDIN_APP.client_secret,
    }
    assert (await linkedin.CONNECTOR.verify(ctx, member)).platform_id == member.platform_id
    assert (await linkedin.CONNECTOR.verify(ctx, org)).platform_id == org.platform_id

    acct = account("linkedin", org.credentials, org.options, handle=org.handle)
    text = unique("connected linkedin")
    outcome = await LinkedInPublisher().publish(
        publish_request(acct, text), publish_context(sandbox, http, "linkedin")
    )
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("linkedin")
    assert (record["text"], record["account"]) == (text, org.platform_id)

    # The member loses the role: the organization account no longer verifies.
    sandbox.configure(connect_organizations={"sandbox-user": []})
    with pytest.raises(ConnectRefused, match="no longer an administrator") as refused:
        await linkedin.CONNECTOR.verify(ctx, org)
    assert refused.value.field == "options.author_urn"


async def test_linkedin_without_refresh_tokens_stores_only_the_token(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    linkedin_client(sandbox)
    sandbox.configure(linkedin_refresh_tokens=False)
    ctx = context(sandbox, http, "linkedin", LINKEDIN_APP)
    grant = await Flow(linkedin.CONNECTOR, ctx).grant()
    member = (await linkedin.CONNECTOR.targets(ctx, grant, {}))[0]
    assert member.credentials == {"access_token": grant.access_token}


async def test_linkedin_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    linkedin_client(sandbox)
    ctx = context(sandbox, http, "linkedin", LINKEDIN_APP)
    flow = Flow(linkedin.CONNECTOR, ctx)
    code = (await flow.consent())["code"]
    await linkedin.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})
    with pytest.raises(ConnectRefused, match="already used or is unknown"):
        await linkedin.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})

    code = (await Flow(linkedin.CONNECTOR, ctx).consent())["code"]
    elsewhere = context(sandbox, http, "linkedin", LINKEDIN_APP)
    elsewhere.redirect_uri = "https://postpilot.example/other"
    with pytest.raises(ConnectRefused, match="another redirect URI"):
        await linkedin.CONNECTOR.exchange(elsewhere, code=code, code_verifier=None, inputs={})

    sandbox.configure(connect_declined_scopes={"linkedin": ["w_member_social"]})
    with pytest.raises(ConnectRefused, match="did not grant the scope w_member_social"):
        await Flow(linkedin.CONNECTOR, ctx).grant()

    sandbox.configure(connect_consent="deny")
    assert (await Flow(linkedin.CONNECTOR, ctx).consent())["error"] == "access_denied"


async def test_linkedin_revoked_app_and_refresh_answered_like_linkedin(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    linkedin_client(sandbox)
    ctx = context(sandbox, http, "linkedin", LINKEDIN_APP)
    grant = await Flow(linkedin.CONNECTOR, ctx).grant()
    [member, _org] = await linkedin.CONNECTOR.targets(ctx, grant, {})
    await linkedin.CONNECTOR.revoke(ctx, member.credentials)
    with pytest.raises(ConnectRefused, match="did not accept the access token"):
        await linkedin.CONNECTOR.verify(ctx, member)

    grant = await Flow(linkedin.CONNECTOR, ctx).grant()
    [member, _org] = await linkedin.CONNECTOR.targets(ctx, grant, {})
    revoke_app(sandbox, "linkedin", "sandbox-user")
    with pytest.raises(ConnectRefused, match="revoked by the user"):
        await linkedin.CONNECTOR.verify(ctx, member)
    acct = account("linkedin", member.credentials, member.options)
    refreshed = await LinkedInPublisher().refresh(acct, publish_context(sandbox, http, "linkedin"))
    assert "invalid, expired or revoked" in refreshed.reason  # type: ignore[union-attr]


# --- Facebook Pages and Instagram (Facebook Login) -----------------------------------------

META_APP = App("1234567890", "meta-secret")


def meta_client(sandbox: SandboxClient, **settings: Any) -> None:
    approve(
        sandbox,
        oauth_clients={
            META_APP.client_id: {"secret": META_APP.client_secret, "redirect_uris": [REDIRECT_URI]}
        },
        **settings,
    )


async def test_facebook_connects_the_pages_that_may_post_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    meta_client(
        sandbox,
        connect_pages={
            "sandbox-user": [
                {"id": "501", "name": "Bakery"},
                {"id": "502", "name": "Insights only", "tasks": ["ANALYZE"]},
                {"id": "503", "name": "Cafe"},
            ]
        },
    )
    ctx = context(sandbox, http, "facebook", META_APP)
    flow = Flow(facebook.CONNECTOR, ctx)
    assert urlsplit(flow.url).path == "/facebook/v21.0/dialog/oauth"
    assert parse_qs(urlsplit(flow.url).query)["scope"] == [",".join(facebook.SCOPES)]
    grant = await flow.grant()
    # The 60-day user token, not the one-hour one the code gave.
    assert grant.expires_at is not None and grant.expires_at - utcnow() > timedelta(days=59)
    assert set(facebook.SCOPES) <= set(grant.scopes)
    pages = await facebook.CONNECTOR.targets(ctx, grant, {})
    assert [(p.platform_id, p.name) for p in pages] == [("501", "Bakery"), ("503", "Cafe")]
    bakery = pages[0]
    assert set(bakery.credentials) == {"page_access_token"}
    assert bakery.options == {"page_id": "501", "app_id": META_APP.client_id}
    assert bakery.expires_at is None  # a Page token read with a long-lived user token
    identity = await facebook.CONNECTOR.verify(ctx, bakery)
    assert (identity.platform_id, identity.handle) == ("501", "Bakery")
    # One Page's token does not read another Page.
    wrong = Target("503", "Cafe", "Cafe", bakery.credentials, {"page_id": "503"})
    with pytest.raises(ConnectRefused, match="Unsupported get request"):
        await facebook.CONNECTOR.verify(ctx, wrong)

    acct = account("facebook", bakery.credentials, bakery.options, handle=bakery.handle)
    text = unique("connected facebook")
    outcome = await FacebookPublisher().publish(
        publish_request(acct, text), publish_context(sandbox, http, "facebook")
    )
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("facebook")
    assert (record["text"], record["account"]) == (text, "501")


async def test_facebook_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    meta_client(sandbox)
    ctx = context(sandbox, http, "facebook", META_APP)
    code = (await Flow(facebook.CONNECTOR, ctx).consent())["code"]
    await facebook.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})
    with pytest.raises(ConnectRefused, match="it was already used"):
        await facebook.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})

    code = (await Flow(facebook.CONNECTOR, ctx).consent())["code"]
    elsewhere = context(sandbox, http, "facebook", META_APP)
    elsewhere.redirect_uri = "https://postpilot.example/other"
    with pytest.raises(ConnectRefused, match="another redirect URI"):
        await facebook.CONNECTOR.exchange(elsewhere, code=code, code_verifier=None, inputs={})

    code = (await Flow(facebook.CONNECTOR, ctx).consent())["code"]
    wrong_secret = context(sandbox, http, "facebook", App(META_APP.client_id, "nope"))
    with pytest.raises(ConnectRefused, match="Meta app id and secret"):
        await facebook.CONNECTOR.exchange(wrong_secret, code=code, code_verifier=None, inputs={})

    sandbox.configure(connect_declined_scopes={"facebook": ["pages_manage_posts"]})
    with pytest.raises(ConnectRefused, match="not granted the permission pages_manage_posts"):
        await Flow(facebook.CONNECTOR, ctx).grant()

    sandbox.configure(connect_declined_scopes={"facebook": []}, connect_pages={"sandbox-user": []})
    with pytest.raises(ConnectRefused, match="manages no Page"):
        await facebook.CONNECTOR.targets(ctx, await Flow(facebook.CONNECTOR, ctx).grant(), {})

    sandbox.configure(connect_consent="deny")
    assert (await Flow(facebook.CONNECTOR, ctx).consent())["error"] == "access_denied"


async def test_facebook_removed_app_ends_every_page_token(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    meta_client(sandbox)
    ctx = context(sandbox, http, "facebook", META_APP)
    grant = await Flow(facebook.CONNECTOR, ctx).grant()
    first, second = await facebook.CONNECTOR.targets(ctx, grant, {})
    # The person removes the app: Facebook's DELETE /{user-id}/permissions with their token.
    removed = await http.delete(
        ctx.url("https://graph.facebook.com", "/v21.0/me/permissions"),
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert removed.json() == {"success": True}
    for page in (first, second):
        with pytest.raises(ConnectRefused, match="not authorized application") as refused:
            await facebook.CONNECTOR.verify(ctx, page)
        assert refused.value.field == "credentials.access_token"

    # The same through the sandbox's control, as a person would in their settings.
    grant = await Flow(facebook.CONNECTOR, ctx).grant()
    page = (await facebook.CONNECTOR.targets(ctx, grant, {}))[0]
    revoke_app(sandbox, "facebook", "sandbox-user")
    with pytest.raises(ConnectRefused, match="connect the account again"):
        await facebook.CONNECTOR.verify(ctx, page)


async def test_instagram_connects_linked_accounts_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    meta_client(
        sandbox,
        connect_pages={
            "sandbox-user": [
                {"id": "601", "name": "Studio", "instagram": "17841400000000001"},
                {"id": "602", "name": "No Instagram"},
            ]
        },
    )
    ctx = context(sandbox, http, "instagram", META_APP)
    flow = Flow(instagram.CONNECTOR, ctx)
    assert urlsplit(flow.url).path == "/instagram/v21.0/dialog/oauth"
    [target] = await instagram.CONNECTOR.targets(ctx, await flow.grant(), {})
    assert target.platform_id == "17841400000000001"
    assert target.options == {
        "ig_user_id": "17841400000000001",
        "login": "facebook",
        "app_id": META_APP.client_id,
    }
    assert target.base_url == sandbox.platform_url("instagram")
    identity = await instagram.CONNECTOR.verify(ctx, target)
    assert identity.platform_id == target.platform_id
    assert identity.handle == target.handle

    acct = account("instagram", target.credentials, target.options, handle=target.handle)
    text = unique("connected instagram")
    outcome = await InstagramPublisher().publish(
        publish_request(acct, text, (sandbox.media_url("ig.png"),)),
        publish_context(sandbox, http, "instagram"),
    )
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("instagram")
    assert (record["text"], record["account"]) == (text, target.platform_id)

    revoke_app(sandbox, "instagram", "sandbox-user")
    with pytest.raises(ConnectRefused, match="did not accept the token"):
        await instagram.CONNECTOR.verify(ctx, target)


async def test_instagram_without_a_linked_account_is_refused(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    meta_client(sandbox, connect_pages={"sandbox-user": [{"id": "701", "name": "Plain"}]})
    ctx = context(sandbox, http, "instagram", META_APP)
    grant = await Flow(instagram.CONNECTOR, ctx).grant()
    with pytest.raises(ConnectRefused, match="has an Instagram professional account linked"):
        await instagram.CONNECTOR.targets(ctx, grant, {})
    sandbox.configure(connect_declined_scopes={"instagram": ["instagram_content_publish"]})
    with pytest.raises(ConnectRefused, match="instagram_content_publish"):
        await Flow(instagram.CONNECTOR, ctx).grant()


# --- Threads -------------------------------------------------------------------------------

THREADS_APP = App("threads-app", "threads-secret")


def threads_client(sandbox: SandboxClient) -> None:
    approve(
        sandbox,
        oauth_clients={
            THREADS_APP.client_id: {
                "secret": THREADS_APP.client_secret,
                "redirect_uris": [REDIRECT_URI],
            }
        },
    )


async def test_threads_connects_verifies_and_publishes(
    sandbox: SandboxClient, http: httpx.AsyncClient
) -> None:
    threads_client(sandbox)
    ctx = context(sandbox, http, "threads", THREADS_APP)
    flow = Flow(threads.CONNECTOR, ctx)
    assert urlsplit(flow.url).path == "/threads/oauth/authorize"
    grant = await flow.grant()
    assert grant.expires_at is not None and grant.expires_at - utcnow() > timedelta(days=59)
    [target] = await threads.CONNECTOR.targets(ctx, grant, {})
    assert target.credentials == {"access_token": grant.access_token}
    assert target.options["threads_user_id"] == target.platform_id
    assert target.handle == "sandbox-user"
    assert (await threads.CONNECTOR.verify(ctx, target)).platform_id == target.platform_id

    acct = account("threads", target.credentials, target.options, handle=target.handle)
    text = unique("connected threads")
    pctx = publish_context(sandbox, http, "threads")
    outcome = await ThreadsPublisher().publish(publish_request(acct, text), pctx)
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("threads")
    assert (record["text"], record["account"]) == (text, target.platform_id)

    # A person removes the app: verify and the publisher's refresh both hear it.
    revoke_app(sandbox, "threads", "sandbox-user")
    with pytest.raises(ConnectRefused, match="did not accept the token"):
        await threads.CONNECTOR.verify(ctx, target)
    refreshed = await ThreadsPublisher().refresh(acct, pctx)
    assert "reconnect the account" in refreshed.reason  # type: ignore[union-attr]


async def test_threads_refusals(sandbox: SandboxClient, http: httpx.AsyncClient) -> None:
    threads_client(sandbox)
    ctx = context(sandbox, http, "threads", THREADS_APP)
    code = (await Flow(threads.CONNECTOR, ctx).consent())["code"]
    await threads.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})
    with pytest.raises(ConnectRefused, match="already used"):
        await threads.CONNECTOR.exchange(ctx, code=code, code_verifier=None, inputs={})

    code = (await Flow(threads.CONNECTOR, ctx).consent())["code"]
    elsewhere = context(sandbox, http, "threads", THREADS_APP)
    elsewhere.redirect_uri = "https://postpilot.example/other"
    with pytest.raises(ConnectRefused, match="another redirect URI"):
        await threads.CONNECTOR.exchange(elsewhere, code=code, code_verifier=None, inputs={})

    sandbox.configure(connect_declined_scopes={"threads": ["threads_content_publish"]})
    with pytest.raises(ConnectRefused, match="threads_content_publish"):
        await Flow(threads.CONNECTOR, ctx).grant()

    sandbox.configure(connect_consent="deny")
    assert (await Flow(threads.CONNECTOR, ctx).consent())["error"] == "access_denied"
