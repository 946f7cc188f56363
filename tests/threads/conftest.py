"""The publishers' contract fixtures (a real HTTP client, a context aimed at the sandbox) and
worker processes."""

from tests.integration.conftest import spawn
from tests.publishers.conftest import http, make_ctx

__all__ = ["http", "make_ctx", "spawn"]
