"""With tracing configured, a pass against the sandbox is one span with a child per delivery's
publish and a span per database statement, carrying ids and kinds but no token or post text; the
spans go to the collector over OTLP/HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from postpilot import tracing
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.monitor.support import receiver

EXPORTER = InMemorySpanExporter()


class _WhileListening(Sampler):
    """The process's provider can be set only once: other tests get spans that record nothing."""

    listening = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.listening else Decision.DROP
        return SamplingResult(decision, attributes if self.listening else None)

    def get_description(self) -> str:
        return "while a tracing test listens"


SAMPLER = _WhileListening()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=SAMPLER)
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    SAMPLER.listening = True
    yield EXPORTER
    SAMPLER.listening = False
    EXPORTER.clear()


def _children(span: ReadableSpan, every: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    assert span.context is not None
    return [s for s in every if s.parent is not None and s.parent.span_id == span.context.span_id]


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_a_pass_is_a_span_with_its_publishes_and_statements(
    sqlite_db: Database, sandbox: SandboxClient, spans: InMemorySpanExporter, scheduler: str
) -> None:
    settings = make_settings(sqlite_db, sandbox, TRACING_OTLP_ENDPOINT="http://127.0.0.1:9")
    runtime = build_runtime(settings, db=sqlite_db)
    try:
        workspace, accounts = await workspace_with_accounts(
            sqlite_db, sandbox, count=2, credentials={"access_token": "secret-token-123"}
        )
        await due_posts(sqlite_db, workspace, accounts, count=1, at=runtime.now(), text="hush")
        report = await run_pass(runtime, scheduler=scheduler)
        assert report.published == 2
    finally:
        await runtime.close()
    every = spans.get_finished_spans()
    (root,) = [s for s in every if s.name == "postpilot.pass"]
    assert root.attributes is not None
    assert root.attributes["postpilot.scheduler"] == scheduler
    assert root.attributes["postpilot.pass_id"] == report.pass_id
    assert root.attributes["postpilot.claimed"] == 2
    assert root.attributes["postpilot.published"] == 2
    assert root.attributes["postpilot.failed"] == 0
    publishes = [s for s in _children(root, every) if s.name == "postpilot.publish"]
    assert {dict(s.attributes or {})["postpilot.delivery_id"] for s in publishes} == {
        d.delivery.id for d in report.decisions
    }
    for publish in publishes:
        assert publish.attributes is not None
        assert publish.attributes["postpilot.platform"] == "mastodon"
        assert publish.attributes["postpilot.outcome"] == "published"
    statements = [
        s
        for s in every
        if s.kind is SpanKind.CLIENT
        and s.name.split()[0] in {"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT"}
    ]
    assert statements, [s.name for s in every]
    # The claim and the writes are the pass's own statements, in its trace.
    assert {s.context.trace_id for s in statements if s.context} >= {root.context.trace_id}
    assert any(s.parent and s.parent.span_id == root.context.span_id for s in statements)
    text = repr([(s.name, dict(s.attributes or {})) for s in every])
    assert "secret-token-123" not in text
    assert "hush" not in text


async def test_after_close_statements_are_no_longer_traced(
    sqlite_db: Database, sandbox: SandboxClient, spans: InMemorySpanExporter
) -> None:
    settings = make_settings(sqlite_db, sandbox, TRACING_OTLP_ENDPOINT="http://127.0.0.1:9")
    runtime = build_runtime(settings, db=sqlite_db)
    await runtime.close()
    await run_pass(runtime, scheduler="optimized")  # nothing due: a claim that finds nothing
    assert [s.name for s in spans.get_finished_spans()] == ["postpilot.pass"]


async def test_spans_are_exported_over_otlp_http() -> None:
    async with receiver() as collector:
        provider = tracing.otlp_provider(collector.url.removesuffix("/hook"))
        with provider.get_tracer("test").start_as_current_span("postpilot.pass"):
            provider.get_tracer("test").start_span("postpilot.publish").end()
        # The exporter's client is synchronous: off the loop that serves the collector.
        assert await asyncio.to_thread(provider.force_flush)
        await asyncio.to_thread(provider.shutdown)
    (sent,) = collector.accepted()
    assert sent.headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(sent.body)
    (resource,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "postpilot"
    names = [s.name for scope in resource.scope_spans for s in scope.spans]
    assert sorted(names) == ["postpilot.pass", "postpilot.publish"]


# In a process of its own: the provider can be set only once per process.
_SET_LATER = """
import json
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from postpilot import tracing
from postpilot.scheduler import engine  # its tracer, taken before any provider is set

outside = context.get_current()
with tracing.span(engine.tracer, "postpilot.publish") as off:
    off_attached = context.get_current() is not outside
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with tracing.span(engine.tracer, "postpilot.publish", attributes={"postpilot.platform": "x"}) as on:
    on_current = trace.get_current_span() is on
print(json.dumps({
    "off_recording": off.is_recording(),
    "off_attached": off_attached,
    "on_current": on_current,
    "spans": [(s.name, dict(s.attributes or {})) for s in exporter.get_finished_spans()],
}))
"""


@pytest.mark.acceptance  # a process of its own
def test_spans_are_skipped_until_a_provider_is_set_and_made_once_one_is() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _SET_LATER],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "off_recording": False,
        "off_attached": False,
        "on_current": True,
        "spans": [["postpilot.publish", {"postpilot.platform": "x"}]],
    }
