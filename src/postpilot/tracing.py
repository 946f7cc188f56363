"""OpenTelemetry traces, off unless configured: a span per pass and per delivery's publish (made
by the scheduler through the OpenTelemetry API with `span`, not even entered until a provider is
set) and one per database statement (the SQLAlchemy instrumentation on the runtime's engine).

On when `TRACING_OTLP_ENDPOINT` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set: spans are exported over OTLP (HTTP, protobuf). A
tracer provider someone else already set (a test, `opentelemetry-instrument`) is used as it is.

Outgoing HTTP is not instrumented: Telegram and Discord carry tokens in URL paths, and the
httpx instrumentation records the full URL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.util.types import Attributes
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

FLUSH_MILLISECONDS = 2000
STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


# What `span` gives while tracing is off: no span to start, no context to attach. Stateless, so
# one serves every caller at once.
_OFF: contextlib.AbstractContextManager[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def configured(endpoint: str | None) -> bool:
    return bool(endpoint) or any(os.environ.get(name) for name in STANDARD_ENDPOINTS)


def on() -> bool:
    """Whether spans go anywhere: a tracer provider was set (until then the API hands out its
    proxy). Asked at each span, so a provider set after the runtime was built is seen."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def span(
    tracer: trace.Tracer, name: str, *, attributes: Attributes = None
) -> contextlib.AbstractContextManager[trace.Span]:
    """`tracer`'s span `name`, current inside the block; with tracing off, a span that records
    nothing and no context entered (the API's no-op span still attaches one, per delivery)."""
    if not on():
        return _OFF
    return tracer.start_as_current_span(name, attributes=attributes)


def start(endpoint: str | None, engine: Engine) -> Callable[[], None] | None:
    """Traces on (`endpoint` is the collector's base URL, as in OTEL_EXPORTER_OTLP_ENDPOINT),
    with `engine`'s statements traced; returns what flushes and stops the statement tracing.
    None, and nothing set up, when no endpoint is configured."""
    if not configured(endpoint):
        return None
    provider: trace.TracerProvider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # nobody set one yet
        provider = otlp_provider(endpoint)
        trace.set_tracer_provider(provider)
    statements = SQLAlchemyInstrumentor()
    # Its declared range stops below SQLAlchemy 2.1, whose cursor events it hooks are unchanged
    # (tests/monitor/test_tracing.py sees the statement spans). None: already instrumented.
    ours = statements.instrument(engine=engine, tracer_provider=provider, skip_dep_check=True)

    def stop() -> None:
        if ours is not None:
            statements.uninstrument()
        flush = getattr(provider, "force_flush", None)
        if flush is not None:  # the last pass's spans; bounded, since it holds up the close
            flush(FLUSH_MILLISECONDS)

    return stop


def otlp_provider(endpoint: str | None) -> TracerProvider:
    # Imported here: the SDK and the exporter cost nothing to a process that does not trace.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None
    )  # without one, the exporter reads the standard variables itself
    provider = TracerProvider(resource=Resource.create({"service.name": "postpilot"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
