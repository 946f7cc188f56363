"""Which connector connects which platform (the same names as publishers/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from postpilot.connect.base import Connector

CONNECTORS: Mapping[str, Connector] = MappingProxyType({})
