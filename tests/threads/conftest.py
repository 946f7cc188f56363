"""The publishers' contract fixtures (a real HTTP client, a context aimed at the sandbox)."""

from tests.publishers.conftest import http, make_ctx

__all__ = ["http", "make_ctx"]
