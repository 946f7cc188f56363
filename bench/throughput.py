"""Reference against optimized against the bare HTTP loop, in one run, on SQLite and PostgreSQL.
Every measured run is a fresh database, a reset sandbox and its own child process; the order of
the modes rotates from one repeat to the next so machine noise hits them all."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bench import common, data
from postpilot.core import figures

MODES = ("reference", "optimized", "bare")
# The optimized pass with REDIS_URL set (`--redis`): account slots shared through Redis.
REDIS_MODE = "optimized-redis"
SUMMARY_KEYS = (
    "wall_s",
    "published",
    "deliveries_per_s",
    "ms_per_delivery",
    "processing_p50_ms",
    "processing_p95_ms",
    "processing_p99_ms",
    "passes",
    "db_statements",
    "statements_per_delivery",
    "statements_per_pass_max",
    "statements_per_full_pass",
    "full_pass_size",
    "cache_hit_rate",
    "cpu_s",
    "cpu_ms_per_delivery",
    "peak_rss_mb",
    "sandbox_cpu_s",
    "peak_db_connections",
)


@dataclass(frozen=True)
class Params:
    deliveries: int
    accounts: int
    platforms: tuple[str, ...]
    batch: int
    concurrency: int
    latency_ms: float
    fault_rate: float = 0.0
    media_every: int = 0
    repeat: int = 3
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    # The reference publishes one at a time: on big N it is measured on its first deliveries.
    reference_deliveries: int | None = None
    modes: tuple[str, ...] = MODES
    timeout_s: float = 1800.0
    profile: bool = False  # cProfile each child (slows it: for finding causes, not for numbers)
    sample: bool = False  # py-spy samples of each child's CPU (bench/sampling.py)
    sniffio_importable: bool = False  # each child with `import sniffio` succeeding (a fix)
    redis_url: str | None = None  # for REDIS_MODE


def run(params: Params, sandbox: common.Sandbox, progress: Progress) -> dict[str, Any]:
    results: dict[str, Any] = {"params": asdict(params), "databases": {}}
    for kind in params.databases:
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in params.modes}
        template = data.Template(kind, Path(tempfile.mkdtemp(prefix="pp-bench-")))
        data.run(template.build())
        try:
            for repeat in range(params.repeat):
                shift = repeat % len(params.modes)
                order = params.modes[shift:] + params.modes[:shift]
                for mode in order:
                    runs[mode].append(
                        one_run(params, kind, mode, repeat, template, sandbox, progress)
                    )
        finally:
            data.run(template.close())
        results["databases"][kind] = {"runs": runs, "summary": summarize(runs)}
    return results


def one_run(
    params: Params,
    kind: str,
    mode: str,
    repeat: int,
    template: data.Template,
    sandbox: common.Sandbox,
    progress: Progress,
) -> dict[str, Any]:
    sandbox.prepare(latency_ms=params.latency_ms, fault_rate=params.fault_rate, seed=repeat)
    load = data.due_load(
        params.deliveries, params.accounts, params.platforms, media_every=params.media_every
    )
    url = data.run(template.copy())
    try:
        data.run(data.populate(url, load, sandbox.client))
        most = params.reference_deliveries if mode == "reference" else None
        spec = {
            "mode": "optimized" if mode == REDIS_MODE else mode,
            "redis_url": params.redis_url if mode == REDIS_MODE else None,
            "database_url": url,
            "sandbox_url": sandbox.url,
            "batch": params.batch,
            "concurrency": params.concurrency,
            "max_deliveries": most,
            "profile": params.profile,
            "sample": params.sample,
            "sniffio_importable": params.sniffio_importable,
        }
        expected = min(params.deliveries, most or params.deliveries)
        task = progress.add_task(f"{kind} {mode} #{repeat + 1}", total=expected)
        sandbox_cpu = sandbox.cpu_seconds()
        try:
            result = spawn(spec, progress, task, params.timeout_s)
        finally:
            progress.remove_task(task)
        result["sandbox_cpu_s"] = sandbox.cpu_seconds() - sandbox_cpu
        result["check"] = check(url, mode, result, sandbox)
        result["expected"] = expected
    finally:
        data.run(template.drop(url))
    return result


def spawn(spec: dict[str, Any], progress: Progress, task: Any, timeout_s: float) -> dict[str, Any]:
    """Run bench.child with `spec`, following its progress lines; returns its result."""
    paths = os.pathsep.join([str(common.ROOT), str(common.ROOT / "src")])
    env = {**os.environ, "PYTHONPATH": paths}
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [common.python(), "-m", "bench.child", json.dumps(spec)],
            cwd=common.ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        result: dict[str, Any] | None = None
        assert process.stdout is not None
        with process.stdout:  # read to its end, then closed (the child keeps no other pipe)
            for line in process.stdout:
                message = json.loads(line)
                if message["type"] == "progress":
                    progress.update(task, completed=message["done"])
                elif message["type"] == "result":
                    result = message["result"]
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode != 0 or result is None:
            errors.seek(0)
            raise RuntimeError(
                f"bench.child {spec['mode']} exited with {process.returncode}:\n"
                + errors.read()[-4000:]
            )
    return result


def check(url: str, mode: str, result: dict[str, Any], sandbox: common.Sandbox) -> dict[str, Any]:
    """Exactly once, counted at the sandbox: every published delivery's text is recorded there
    once, and nothing else is."""
    texts = Counter(record["text"] for record in sandbox.client.records())
    duplicates = sum(count - 1 for count in texts.values() if count > 1)
    statuses = data.run(data.status_counts(url))
    if mode == "bare":
        ok = duplicates == 0 and sum(texts.values()) == result["published"]
        return {
            "sandbox_records": sum(texts.values()),
            "duplicates": duplicates,
            "exactly_once": ok,
        }
    published = Counter(data.run(data.published_texts(url)))
    ok = duplicates == 0 and texts == published and result["published"] == sum(published.values())
    return {
        "sandbox_records": sum(texts.values()),
        "db_published": sum(published.values()),
        "duplicates": duplicates,
        "statuses": statuses,
        "exactly_once": ok,
    }


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        mode: common.medians(mode_runs, SUMMARY_KEYS) for mode, mode_runs in runs.items()
    }
    for mode, mode_runs in runs.items():
        summary[mode]["runs"] = len(mode_runs)
        summary[mode]["exactly_once_all_runs"] = all(r["check"]["exactly_once"] for r in mode_runs)
    ref, opt, bare = (summary.get(m, {}) for m in MODES)
    shared = summary.get(REDIS_MODE, {})
    summary["ratios"] = {
        "throughput_optimized_over_reference": figures.ratio(
            opt.get("deliveries_per_s"), ref.get("deliveries_per_s")
        ),
        "throughput_optimized_over_bare": figures.ratio(
            opt.get("deliveries_per_s"), bare.get("deliveries_per_s")
        ),
        "throughput_reference_over_bare": figures.ratio(
            ref.get("deliveries_per_s"), bare.get("deliveries_per_s")
        ),
        "ms_per_delivery_optimized_over_reference": figures.ratio(
            opt.get("ms_per_delivery"), ref.get("ms_per_delivery")
        ),
        "statements_per_delivery_optimized_over_reference": figures.ratio(
            opt.get("statements_per_delivery"), ref.get("statements_per_delivery")
        ),
        "cpu_per_delivery_optimized_over_reference": figures.ratio(
            opt.get("cpu_ms_per_delivery"), ref.get("cpu_ms_per_delivery")
        ),
        "cpu_per_delivery_optimized_over_bare": figures.ratio(
            opt.get("cpu_ms_per_delivery"), bare.get("cpu_ms_per_delivery")
        ),
        "throughput_redis_over_optimized": figures.ratio(
            shared.get("deliveries_per_s"), opt.get("deliveries_per_s")
        ),
        "cpu_per_delivery_redis_over_optimized": figures.ratio(
            shared.get("cpu_ms_per_delivery"), opt.get("cpu_ms_per_delivery")
        ),
    }
    return summary
