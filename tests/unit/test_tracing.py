"""Tracing is off unless an endpoint is configured: then nothing is set up at all."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from sqlalchemy import create_engine

from postpilot import tracing

STANDARD = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def test_nothing_is_set_up_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in STANDARD:
        monkeypatch.delenv(name, raising=False)
    engine = create_engine("sqlite://")  # never connected
    provider = trace.get_tracer_provider()
    assert tracing.start(None, engine) is None
    assert tracing.start("", engine) is None
    assert trace.get_tracer_provider() is provider
    assert not engine.dispatch.before_cursor_execute  # no statement tracing


@pytest.mark.parametrize("name", STANDARD)
def test_the_standard_variables_turn_it_on(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for other in STANDARD:
        monkeypatch.delenv(other, raising=False)
    assert not tracing.configured(None)
    monkeypatch.setenv(name, "http://127.0.0.1:4318")
    assert tracing.configured(None)
    assert tracing.configured("http://collector:4318")
