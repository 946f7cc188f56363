"""Markdown for BENCHMARKS.md from a scenario's results."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def status(met: bool | None) -> str:
    if met is None:
        return "not measured"
    return "**met**" if met else "**not met**"


def throughput(name: str, result: dict[str, Any], command: str) -> str:
    p = result["params"]
    out = [
        f"### {name}",
        "",
        f"`{command}`",
        "",
        f"N = {p['deliveries']:,} due deliveries over M = {p['accounts']} accounts on "
        f"K = {len(p['platforms'])} platforms ({', '.join(p['platforms'])}); batch {p['batch']}, "
        f"concurrency {p['concurrency']}; sandbox latency {fmt(p['latency_ms'])} ms, fault rate "
        f"{p['fault_rate']}; media: {_media(p['media_every'])}; "
        f"medians of {p['repeat']} runs per mode, modes interleaved."
        + (
            " Every process ran with `import sniffio` succeeding (the proposed fix)."
            if p.get("sniffio_importable")
            else ""
        )
        + (
            f" The reference is measured on its first {p['reference_deliveries']:,} deliveries "
            "(it publishes one at a time)."
            if p.get("reference_deliveries")
            else ""
        ),
        "",
    ]
    rows = []
    for db, entry in result["databases"].items():
        summary = entry["summary"]
        for mode in ("reference", "optimized", "optimized-redis", "bare"):
            s = summary.get(mode)
            if not s:
                continue
            full = (
                f"{fmt(s['statements_per_full_pass'])} (of {fmt(s['full_pass_size'])})"
                if s.get("statements_per_full_pass") is not None
                else "-"
            )
            rows.append(
                [
                    db,
                    mode,
                    fmt(s["published"]),
                    fmt(s["wall_s"], 2),
                    fmt(s["deliveries_per_s"]),
                    fmt(s["ms_per_delivery"], 2),
                    " / ".join(
                        fmt(s[k])
                        for k in ("processing_p50_ms", "processing_p95_ms", "processing_p99_ms")
                    ),
                    full,
                    fmt(s.get("statements_per_pass_max")),
                    fmt(s.get("statements_per_delivery"), 2),
                    pct(s.get("cache_hit_rate")),
                    fmt(s["cpu_ms_per_delivery"], 2),
                    fmt(s["peak_rss_mb"]),
                    fmt(s["sandbox_cpu_s"], 2),
                    fmt(s["exactly_once_all_runs"]),
                ]
            )
    out.append(
        table(
            [
                "db",
                "mode",
                "published",
                "wall s",
                "deliveries/s",
                "wall ms/delivery",
                "processing p50 / p95 / p99 ms",
                "statements per full pass",
                "max statements/pass",
                "statements/delivery",
                "cache hits",
                "CPU ms/delivery",
                "peak RSS MB",
                "sandbox CPU s",
                "exactly once",
            ],
            rows,
        )
    )
    out.append("")
    ratio_rows = []
    for db, entry in result["databases"].items():
        r = entry["summary"]["ratios"]
        ratio_rows.append(
            [
                db,
                times(r["throughput_optimized_over_reference"]),
                pct(r["throughput_optimized_over_bare"]),
                pct(r["throughput_reference_over_bare"]),
                pct(_cut(r["ms_per_delivery_optimized_over_reference"])),
                pct(_cut(r["statements_per_delivery_optimized_over_reference"])),
                times(r["cpu_per_delivery_optimized_over_bare"]),
            ]
        )
    out.append(
        table(
            [
                "db",
                "throughput optimized / reference",
                "optimized / bare",
                "reference / bare",
                "wall time per delivery cut",
                "DB statements per delivery cut",
                "CPU per delivery optimized / bare",
            ],
            ratio_rows,
        )
    )
    shared = [
        (db, entry["summary"]["ratios"])
        for db, entry in result["databases"].items()
        if entry["summary"]["ratios"].get("throughput_redis_over_optimized") is not None
    ]
    if shared:
        out.append("")
        out.append(
            table(
                ["db", "throughput with Redis / without", "CPU per delivery with Redis / without"],
                [
                    [
                        db,
                        pct(r["throughput_redis_over_optimized"]),
                        times(r["cpu_per_delivery_redis_over_optimized"]),
                    ]
                    for db, r in shared
                ],
            )
        )
    return "\n".join(out) + "\n"


def _cut(ratio: float | None) -> float | None:
    return None if ratio is None else 1 - ratio


def _media(every: int) -> str:
    return f"an image on 1 post in {every}" if every else "none"
