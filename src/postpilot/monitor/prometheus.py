"""Prometheus exposition: the per-pass figures as counters and histograms, per-cache hits and
misses, DB connections, what the alert rules last saw, and the API's requests. One registry per
runtime (not the global default), so several runtimes in one process never collide.

The counters count the passes run in this process: scrape every process that runs passes (the
API with its worker, and each `postpilot worker` via WORKER_METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from postpilot.cache.memory import CacheStats
from postpilot.monitor.webhooks import WebhookSender
from postpilot.scheduler.summary import PassReport

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
STATEMENT_BUCKETS = (1, 2, 3, 4, 5, 8, 10, 20, 50, 100, 200, 500, 1000, 5000)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RESULTS = ("published", "failed", "retried", "rate_limited", "unknown", "released", "lost_lease")


class PrometheusMetrics:
    def __init__(
        self,
        *,
        max_db_connections: int,
        caches: Callable[[], Mapping[str, CacheStats]] | None = None,
        webhooks: Callable[[], list[WebhookSender]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.passes = Counter(
            "postpilot_passes", "Scheduler passes run.", ["scheduler"], registry=r
        )
        self.claimed = Counter(
            "postpilot_deliveries_claimed",
            "Deliveries claimed by passes.",
            ["scheduler"],
            registry=r,
        )
        self.outcomes = Counter(
            "postpilot_delivery_outcomes",
            "What passes wrote for the deliveries they claimed.",
            ["scheduler", "result"],
            registry=r,
        )
        self.processing = Histogram(
            "postpilot_delivery_processing_seconds",
            "Per-delivery processing time, claim to decision.",
            ["scheduler"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.pass_duration = Histogram(
            "postpilot_pass_duration_seconds",
            "Pass duration (what a cron caller waits for).",
            ["scheduler"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.lateness = Histogram(
            "postpilot_delivery_lateness_seconds",
            "published_at - scheduled_at of published deliveries.",
            ["scheduler"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.statements = Histogram(
            "postpilot_pass_db_statements",
            "DB statements per pass (DB queries per batch).",
            ["scheduler"],
            buckets=STATEMENT_BUCKETS,
            registry=r,
        )
        self.pass_cache = Counter(
            "postpilot_pass_cache_lookups",
            "Cache lookups made during passes.",
            ["scheduler", "result"],
            registry=r,
        )
        self.db_peak = Gauge(
            "postpilot_db_connections_peak",
            "Most DB connections in use during the last pass.",
            ["scheduler"],
            registry=r,
        )
        self.db_max = Gauge("postpilot_db_connections_max", "DATABASE_MAX_CONNECTIONS.", registry=r)
        self.db_max.set(max_db_connections)
        self.alerts_firing = Gauge(
            "postpilot_alerts_firing",
            "Alerts firing at the last evaluation, per rule.",
            ["rule"],
            registry=r,
        )
        self.overdue = Gauge(
            "postpilot_deliveries_overdue",
            "Deliveries past their due time by more than ALERT_OVERDUE_SECONDS at the last "
            "evaluation.",
            registry=r,
        )
        self.http_requests = Counter(
            "postpilot_http_requests",
            "API requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "postpilot_http_request_duration_seconds",
            "API request latency, first byte read to last byte sent, by method and route template.",
            ["method", "route"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        r.register(_LiveCollector(caches, webhooks))

    def observe(self, report: PassReport) -> None:
        scheduler = report.scheduler
        self.passes.labels(scheduler).inc()
        self.claimed.labels(scheduler).inc(report.claimed)
        for result in RESULTS:
            count = getattr(report, result)
            if count:
                self.outcomes.labels(scheduler, result).inc(count)
        processing = self.processing.labels(scheduler)
        for ms in report.processing_ms:
            processing.observe(ms / 1000)
        lateness = self.lateness.labels(scheduler)
        for ms in report.lateness_ms:
            lateness.observe(max(0.0, ms / 1000))
        self.pass_duration.labels(scheduler).observe(report.duration_ms / 1000)
        self.statements.labels(scheduler).observe(report.db_statements)
        if report.cache_hits:
            self.pass_cache.labels(scheduler, "hit").inc(report.cache_hits)
        if report.cache_misses:
            self.pass_cache.labels(scheduler, "miss").inc(report.cache_misses)
        self.db_peak.labels(scheduler).set(report.peak_db_connections)

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """`route` is the matched template (`/api/posts/{post_id}`), never the raw path: one
        series per id would grow without bound. So is `method`: unknown ones are "other"."""
        method = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Read at scrape time: every cache's lifetime hits and misses, and webhook counts."""

    def __init__(
        self,
        caches: Callable[[], Mapping[str, CacheStats]] | None,
        webhooks: Callable[[], list[WebhookSender]] | None,
    ) -> None:
        self._caches = caches
        self._webhooks = webhooks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self._caches is not None:
            requests = CounterMetricFamily(
                "postpilot_cache_requests",
                "Cache lookups per cache (in this process), hit or miss.",
                labels=["cache", "result"],
            )
            for name, stats in sorted(self._caches().items()):
                requests.add_metric([name, "hit"], stats.hits)
                requests.add_metric([name, "miss"], stats.misses)
            yield requests
        if self._webhooks is not None:
            sent = CounterMetricFamily(
                "postpilot_webhook_messages",
                "Webhook messages by outcome: sent, failed (after retries), dropped (queue full).",
                labels=["webhook", "result"],
            )
            queued = GaugeMetricFamily(
                "postpilot_webhook_queue", "Webhook messages waiting.", labels=["webhook"]
            )
            for sender in self._webhooks():
                for result in ("sent", "failed", "dropped"):
                    sent.add_metric([sender.name, result], getattr(sender.stats, result))
                queued.add_metric([sender.name], sender.pending)
            yield sent
            yield queued


def serve(metrics: PrometheusMetrics, *, host: str, port: int) -> Callable[[], None]:
    """Serve `metrics` on host:port in a background thread (for `postpilot worker`, which has
    no HTTP API); returns the function that stops it."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
