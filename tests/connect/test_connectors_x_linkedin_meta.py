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

from postpilot.connect.base import App, ConnectContext, ConnectRefused, Grant, OAuthConnector
from postpilot.connect.platforms import linkedin, x
from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext
from postpilot.publishers.linkedin import LinkedInPublisher
from postpilot.publishers.media import MediaFetcher
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
