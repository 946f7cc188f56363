"""How the X, LinkedIn and Meta connectors read each platform's refusal of a token call into a
message a person can act on (bodies as connect.md records them), never echoing a secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postpilot.connect.platforms import _meta, linkedin, x

SECRET = "s3cret-token-value"


def response(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (
            400,
            {
                "error": "invalid_request",
                "error_description": "Value passed for the authorization code was invalid.",
            },
            "refused the authorization code",
        ),
        (
            400,
            {
                "error": "invalid_request",
                "error_description": "Value passed for the code verifier was invalid.",
            },
            "PKCE code verifier",
        ),
        (
            401,
            {
                "error": "unauthorized_client",
                "error_description": "Missing valid authorization header",
            },
            "client id and secret",
        ),
        (503, {}, "HTTP 503"),
    ],
)
def test_x_token_refusals(status: int, body: dict[str, Any], says: str) -> None:
    refused = x._refused_code(response(status, body), body)
    assert says in refused.message
    assert SECRET not in refused.message


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (
            401,
            {
                "error": "invalid_request",
                "error_description": "Unable to retrieve access token: authorization code "
                "not found",
            },
            "already used or is unknown",
        ),
        (
            400,
            {
                "error": "invalid_redirect_uri",
                "error_description": "Unable to retrieve access token: appid/redirect uri/code "
                "verifier does not match authorization code. Or authorization code expired.",
            },
            "another redirect URI",
        ),
        (401, {"error": "invalid_client"}, "client id and secret"),
        (
            400,
            {
                "error": "invalid_request",
                "error_description": 'A required parameter "code" is missing',
            },
            'A required parameter "code" is missing',
        ),
    ],
)
def test_linkedin_token_refusals(status: int, body: dict[str, Any], says: str) -> None:
    assert says in linkedin._refused_code(response(status, body), body).message


def graph_error(code: int, subcode: int | None, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("body", "says", "field"),
    [
        (graph_error(100, 36009, "This authorization code has been used."), "already used", None),
        (graph_error(100, 36007, "This authorization code has expired."), "has expired", None),
        (graph_error(100, 36008, "Error validating verification code."), "redirect URI", None),
        (graph_error(1, None, "Error validating client secret."), "Meta app id", None),
        (
            graph_error(190, 458, "Error validating access token: The user has not authorized"),
            "connect the account again",
            "credentials.access_token",
        ),
        (graph_error(200, None, "(#200) Permissions error"), "Permissions error", None),
    ],
)
def test_graph_refusals(body: dict[str, Any], says: str, field: str | None) -> None:
    refused = _meta.refusal(response(400, body), "Facebook")
    assert says in refused.message
    assert refused.field == field
    assert refused.message.startswith("Facebook ")
