"""What every scenario shares: paths, the benchmark's settings, medians over repeats, the
machine, the PostgreSQL scratch databases and the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from postpilot.core import figures
from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import SandboxProcess, start_sandbox
from postpilot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
PG_ADMIN_DSN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Rate limits the sandbox applies: high enough that no benchmark meets them.
NO_RATE_LIMIT = 1_000_000_000


def pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


def pg_dsn(database: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{database}"


def bench_settings(
    *,
    database_url: str,
    sandbox_url: str,
    batch: int = 20,
    concurrency: int = 5,
    **extra: Any,
) -> Settings:
    """The settings a benchmark process runs with: never the developer's .env files."""
    port = sandbox_url.rsplit(":", 1)[1]
    values: dict[str, Any] = {
        "_env_file": None,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "SANDBOX_URL": sandbox_url,
        "MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        "SCHEDULER_BATCH_SIZE": batch,
        "SCHEDULER_CONCURRENCY": concurrency,
        # A retry is due at once: a run ends when every delivery is final, not after backoffs.
        "SCHEDULER_RETRY_BASE_SECONDS": 0,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    values.update(extra)
    return load_settings(**values)


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment for a `postpilot worker` subprocess with these settings."""
    names = (
        "DATABASE_URL",
        "SECRET_KEY",
        "SANDBOX_URL",
        "MEDIA_ALLOWED_HOSTS",
        "SCHEDULER_BATCH_SIZE",
        "SCHEDULER_CONCURRENCY",
        "SCHEDULER_RETRY_BASE_SECONDS",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "WORKER_POLL_SECONDS",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "DATABASE_"))}
    env.update({name: str(getattr(settings, name)) for name in names})
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- medians over repeats (every figure itself is postpilot.core.figures's) -------------------


def median(values: Sequence[float | None]) -> float | None:
    """The median of the runs that measured the figure."""
    return figures.median([v for v in values if v is not None])


def medians(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: median([run.get(key) for run in runs]) for key in keys}


# --- the machine -----------------------------------------------------------------------------


def pg_version() -> str:
    async def ask() -> str:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except (OSError, asyncpg.PostgresError) as exc:
        return f"unavailable ({type(exc).__name__})"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "git_commit": _git_commit(),
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load: other work on the machine skews every number."""
    return [round(value, 2) for value in os.getloadavg()]


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip()
    except OSError:
        return "unknown"


# --- PostgreSQL scratch databases --------------------------------------------------------------


async def pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def scratch_name(prefix: str = "pp_bench") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- the sandbox -----------------------------------------------------------------------------


@dataclass
class Sandbox:
    process: SandboxProcess
    client: SandboxClient

    @property
    def url(self) -> str:
        return self.process.url

    def prepare(self, *, latency_ms: float, fault_rate: float, seed: int) -> None:
        """Empty it and set latency, faults and (unreachable) rate limits for one run."""
        self.client.reset()
        self.client.configure(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            seed=seed,
            rate_limit=NO_RATE_LIMIT,
            rate_window_seconds=3600.0,
        )

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.process.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def running_sandbox() -> Iterator[Sandbox]:
    process = start_sandbox()
    client = SandboxClient(process.url)
    # Big runs read many records back: allow the time.
    client._http.timeout = 120
    try:
        yield Sandbox(process, client)
    finally:
        client.close()
        process.stop()


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def python() -> str:
    return sys.executable
