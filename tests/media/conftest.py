"""Worker processes for the media tests (the same fixture as the integration tests')."""

from tests.integration.conftest import spawn

__all__ = ["spawn"]
