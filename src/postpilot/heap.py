"""A long-running process's heap. What its start makes (modules, settings, the runtime, its
compiled statements) lives as long as the process, yet every full collection walked it again:
on a worker publishing at C = 20, one such collection took about 100 ms, a stall every delivery
in flight waited through (BENCHMARKS.md). Moved out of the collector's sight once the process is
ready, a full collection walks only what came since.

A young collection every 700 new objects (Python's default) also came dozens of times a second
on a busy worker, 2 to 3 % of its CPU: a pass's deliveries allocate in bursts and keep little.
Every 20,000 cuts that to a few per run, for at most a few megabytes more."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Once, when an entry point is ready to work: collect the start's garbage, freeze the rest
    and collect the young generation less often. Not for code that runs many times in one
    process (tests, the app factory): what it freezes is never freed."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
