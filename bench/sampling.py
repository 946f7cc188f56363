"""Where a measured child spends its CPU, by sampling: py-spy (a bench-only dependency) reads the
process's stacks from outside, 250 times a second, and keeps only samples where a thread is
running Python (idle waits in epoll are dropped). Unlike cProfile it adds no cost per call, so
the shares it reports are the real run's.

`sampled()` wraps a run; `summary` turns py-spy's folded stacks into the functions holding most
samples, on their own (the leaf frame) and inclusive (anywhere in the stack, once per sample)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE = 250
TOP = 40


@contextlib.contextmanager
def sampled(into: dict[str, object]) -> Iterator[None]:
    """Sample this process while the block runs; the summary lands in `into`."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--sample needs py-spy: pip install py-spy")
    with tempfile.TemporaryDirectory() as scratch:
        folded = Path(scratch) / "stacks.txt"
        process = subprocess.Popen(
            [
                *(spy, "record", "--pid", str(os.getpid()), "--rate", str(RATE)),
                *("--format", "raw", "--output", str(folded), "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            process.wait()
        if folded.exists():
            into.update(summary(folded.read_text().splitlines()))
            if keep := os.environ.get("BENCH_SAMPLE_KEEP"):  # the whole stacks, for a closer look
                shutil.copy(folded, f"{keep}.{os.getpid()}")


def summary(lines: list[str]) -> dict[str, object]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "sample_total": total,
        "sample_own": _shares(own, total),
        "sample_inclusive": _shares(inclusive, total),
    }


def _short(frame: str) -> str:
    """`function (path:line)` with the path from site-packages or the repository on."""
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        head, found, tail = frame.partition(marker)
        if found:
            name = head.split(" (")[0]
            return f"{name} ({tail.split(':')[0]})"
    return frame.split(":")[0]


def _shares(counter: Counter[str], total: int) -> list[str]:
    share = 100 / max(total, 1)
    return [f"{count * share:5.1f} %  {frame}" for frame, count in counter.most_common(TOP)]
