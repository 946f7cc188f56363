"""A long-running process's heap. What its start makes (modules, settings, the runtime, its
compiled statements) lives as long as the process, yet every full collection walked it again:
on a worker publishing at C = 20, one such collection took about 100 ms, a stall every delivery
in flight waited through (BENCHMARKS.md). Moved out of the collector's sight once the process is
ready, a full collection walks only what came since."""

from __future__ import annotations

import gc


def settle() -> None:
    """Once, when an entry point is ready to work: collect the start's garbage, then freeze the
    rest. Not for code that runs many times in one process (tests, the app factory): what it
    freezes is never freed."""
    gc.collect()
    gc.freeze()
