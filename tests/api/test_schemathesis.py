"""Schemathesis against the ASGI app on a real SQLite file, with every check: no input gives a
server error, every answer is documented (status, content type, body shape)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from starlette.types import ASGIApp, Receive, Scope, Send

from postpilot.api.app import create_app
from postpilot.settings import load_settings
from postpilot.store.database import Database
from postpilot.store.schema import upgrade
from tests.helpers import make_settings, new_workspace

pytestmark = pytest.mark.integration  # api_key: its own SQLite database

# Bounded so that the whole run stays well under a minute on two cores; raise it for a deeper
# run by hand (SCHEMATHESIS_EXAMPLES=500).
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))


def _migrated_workspace(path: Path) -> tuple[Database, str]:
    async def build() -> tuple[Database, str]:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        _, key = await new_workspace(db)
        await db.dispose()
        return db, key

    # Its own thread and loop: the app's loop is schemathesis's, not this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, build()).result()


class LateApp:
    """The schema is loaded when the module is collected, the app (with its database) is made by
    a fixture: this forwards to that app. (schemathesis's `from_fixture` fails on pytest 9.)"""

    app: ASGIApp | None = None
    key: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the api_key fixture sets the app"
        await self.app(scope, receive, send)


LATE_APP = LateApp()
# Every check runs. A schema-valid body can still break a rule no JSON schema can state (the
# target accounts exist in this workspace, the time is not past, the zone is an IANA name,
# the text fits the platform): those are 422s, so valid data may also get 422. Invalid data
# may be refused for its size first: 413 is a rejection too. Readiness answers 503 by design
# while no worker or cron pass has run.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "404", "409", "422", "5xx"]
            },
            "negative_data_rejection": {
                "expected-statuses": ["400", "401", "404", "405", "409", "413", "422"]
            },
        },
        "operations": [
            {
                "include-path-regex": "^/api/(v1/)?health",
                "checks": {
                    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}
                },
            },
            # The connect callback's state is its credential: one schemathesis makes up is
            # refused (400 invalid_state), as a platform's denial is (400 access_denied).
            {
                "include-path-regex": "^/api/(v1/)?connect/callback",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "303", "400", "422"]}
                },
            },
            # A list's cursor that fits the schema may still not be one the list gave (400).
            {
                "include-path-regex": "(^/api/(v1/)?[a-z]+|/activity|/deliveries)$",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "404", "409", "422", "5xx"]
                    }
                },
            },
        ],
    }
)
schema = schemathesis.openapi.from_dict(
    create_app(load_settings(_env_file=None, DATABASE_URL="sqlite:///unused.db")).openapi(),
    config=CONFIG,
)
# The v1 document: the /api aliases are the same handlers (their old list shapes have their
# own tests), and fuzzing both would double the run.
schema = schema.exclude(deprecated=True)
schema.app = LATE_APP


@schema.auth(refresh_interval=None)
class WorkspaceKey:
    """The workspace's key, which is also the operator secret here (see `api_key`)."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        # Also asked while the tests are collected, before the fixture made the key.
        return LATE_APP.key or "not-yet"

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def api_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db, key = _migrated_workspace(tmp_path_factory.mktemp("schemathesis") / "postpilot.db")
    # One bearer token opens both the workspace's and the operator's endpoints. Publishers go to
    # a closed loopback port: nothing generated here can reach a real platform.
    LATE_APP.app = create_app(make_settings(db, CRON_SECRET=key, SANDBOX_URL="http://127.0.0.1:9"))
    LATE_APP.key = key
    yield key
    asgi.shutdown_lifespans()
    LATE_APP.app = LATE_APP.key = None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api(case: schemathesis.Case, api_key: str) -> None:
    case.call_and_validate()
