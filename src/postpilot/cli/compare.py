"""`postpilot compare`: the two schedulers on copies of the same due workload."""

from __future__ import annotations

import typer

from postpilot.cli import common


def compare(limit: int = typer.Option(20, min=1)) -> None:
    """Not finished yet."""
    common.fail(f"compare is not finished yet (limit {limit})")
