"""The scheduler kinds and knobs are declared once (`core/knobs.py`): the settings, the API
bodies, the CLI options and the run-time control all take their bounds and defaults from there."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from postpilot.api.routes.scheduler import SchedulerUpdate
from postpilot.api.schemas import PassRequest
from postpilot.cli.main import app
from postpilot.core import knobs
from postpilot.scheduler import control
from postpilot.settings import Settings

COUNT_KNOBS = (knobs.CONCURRENCY, knobs.BATCH_SIZE)


def _field_schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    schema = model.model_json_schema()["properties"][field]
    return next((s for s in schema.get("anyOf", [schema]) if "minimum" in s), schema)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return f"exit {result.exit_code}: {result.output}"


@pytest.mark.parametrize("knob", COUNT_KNOBS, ids=lambda knob: knob.name)
def test_settings_take_bounds_and_default_from_the_knob(knob: knobs.DefaultedKnob[int]) -> None:
    field = Settings.model_json_schema()["properties"][knob.setting]
    assert (field["minimum"], field["maximum"]) == (knob.low, knob.high)
    assert Settings.model_fields[knob.setting].default == knob.default


@pytest.mark.parametrize(
    ("model", "field", "knob"),
    [
        (PassRequest, "limit", knobs.BATCH_SIZE),
        (PassRequest, "concurrency", knobs.CONCURRENCY),
        (SchedulerUpdate, "concurrency", knobs.CONCURRENCY),
        (SchedulerUpdate, "batch_size", knobs.BATCH_SIZE),
    ],
)
def test_api_bodies_take_bounds_from_the_knob(
    model: type[BaseModel], field: str, knob: knobs.Knob[int]
) -> None:
    schema = _field_schema(model, field)
    assert (schema["minimum"], schema["maximum"]) == (knob.low, knob.high)


def test_api_names_the_scheduler_kinds_of_the_enum() -> None:
    schema = SchedulerUpdate.model_json_schema()
    assert schema["$defs"]["SchedulerKind"]["enum"] == [kind.value for kind in knobs.SchedulerKind]


@pytest.mark.parametrize("seconds", [knobs.INTERVAL.low - 0.5, knobs.INTERVAL.high + 1])
def test_api_interval_is_checked_against_the_knob(seconds: float) -> None:
    with pytest.raises(ValueError, match=r"interval \(seconds\) must be between"):
        SchedulerUpdate(interval=seconds)
    assert SchedulerUpdate(interval=knobs.INTERVAL.high).interval == knobs.INTERVAL.high


@pytest.mark.parametrize(
    ("option", "knob"), [("limit", knobs.BATCH_SIZE), ("concurrency", knobs.CONCURRENCY)]
)
def test_run_once_options_take_bounds_from_the_knob(option: str, knob: knobs.Knob[int]) -> None:
    assert f"[{knob.low}<=x<={knob.high}]" in _cli("run-once", "--help")
    for value in (knob.low - 1, knob.high + 1):
        refused = _cli("run-once", f"--{option}", str(value))
        assert refused.startswith("exit 2:") and f"'--{option}'" in refused


@pytest.mark.parametrize("command", ["run-once", "worker"])
def test_cli_scheduler_kinds_are_the_enum(command: str) -> None:
    assert f"<{'|'.join(knobs.SchedulerKind)}>" in _cli(command, "--help")
    refused = _cli(command, "--scheduler", "fast")
    assert refused.startswith("exit 2:") and "'fast' is not one of" in refused


def test_run_once_defaults_to_the_default_scheduler() -> None:
    assert f"[default: {knobs.DEFAULT_SCHEDULER}]" in _cli("run-once", "--help")


@pytest.mark.parametrize("knob", knobs.TUNABLE, ids=lambda knob: knob.name)
def test_run_time_control_checks_each_knob(knob: knobs.Knob[int] | knobs.Knob[float]) -> None:
    control.check_knobs(**{knob.name: knob.low})
    control.check_knobs(**{knob.name: knob.high})
    with pytest.raises(control.InvalidChange) as refused:
        control.check_knobs(**{knob.name: knob.high + 1})
    assert str(refused.value) == knob.problem(knob.high + 1)
    assert set(control.RESET) == {k.name for k in knobs.TUNABLE}
