"""Which connector connects which platform (the same names as publishers/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from postpilot.connect.base import Connector
from postpilot.connect.platforms import (
    bluesky,
    discord,
    facebook,
    instagram,
    linkedin,
    mastodon,
    matrix,
    slack,
    telegram,
    threads,
    x,
)

CONNECTORS: Mapping[str, Connector] = MappingProxyType(
    {
        module.CONNECTOR.platform: module.CONNECTOR
        for module in (
            bluesky,
            discord,
            facebook,
            instagram,
            linkedin,
            mastodon,
            matrix,
            slack,
            telegram,
            threads,
            x,
        )
    }
)
