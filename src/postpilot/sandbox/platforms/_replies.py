"""What the sandbox's threads and comments share: a reply or comment must point at something
the sandbox published on that platform, and each records what it points at so tests can walk
the chain."""

from __future__ import annotations

from postpilot.sandbox.state import Record, SandboxState


def find(state: SandboxState, platform: str, record_id: str) -> Record | None:
    """The record published on `platform` under `record_id`, if any."""
    for record in state.records:
        if record.platform == platform and record.id == record_id:
            return record
    return None
