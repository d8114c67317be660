"""The shipped automations (pipelines.alerts) and ``custsync alerts apply``'s own checks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from uuid import uuid4

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prefect.automations import AutomationCore
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import matches

from pipelines.alerts import (
    FINISHED,
    LATE,
    NAMES,
    OVER_LABEL,
    AlertConfig,
    automations,
    finished_event,
)
from pipelines.commands.alerts import parse_duration
from pipelines.flows.sync import NOTHING_NEW, WITH_REJECTS

EXIT_CODES = st.sampled_from([0, 1, 2, 3, 4, 70])


@given(
    exit_code=EXIT_CODES,
    rejected=st.integers(0, 10_000),
    failed=st.integers(0, 10_000),
    threshold=st.none() | st.integers(0, 10_000),
)
def test_the_finished_event_says_whether_a_completed_run_went_over_the_threshold(
    exit_code: int, rejected: int, failed: int, threshold: int | None
) -> None:
    summary = {"run_id": "r1", "flow": "sync", "target": "sumup", "exit_code": exit_code}
    summary["rejected"] = rejected
    resource, payload = finished_event(summary, rejected + failed, threshold)
    if threshold is None:
        expected = "unset"
    else:
        over = exit_code == 1 and rejected + failed > threshold
        expected = "true" if over else "false"
    assert resource[OVER_LABEL] == expected
    assert resource["prefect.resource.id"] == "custsync.run.r1"
    assert all(isinstance(v, str) for v in resource.values())  # labels are strings
    assert (payload["rejected"], payload["failed"], payload["threshold"]) == (
        rejected,
        failed,
        threshold,
    )


def test_a_run_that_recorded_nothing_still_has_an_event() -> None:
    resource, payload = finished_event({"run_id": None, "exit_code": 2}, 0, 5)
    assert resource["prefect.resource.id"] == "custsync.run.unrecorded"
    assert resource[OVER_LABEL] == "false" and payload["failed_records"] == 0


def _trigger(automation: AutomationCore) -> EventTrigger:
    assert isinstance(automation.trigger, EventTrigger)
    return automation.trigger


@given(threshold=st.integers(0, 1000), minutes=st.integers(1, 24 * 60))
def test_three_automations_one_block(threshold: int, minutes: int) -> None:
    block = uuid4()
    config = AlertConfig(threshold, timedelta(minutes=minutes), "nightly")
    shipped = automations(block, config)
    assert tuple(a.name for a in shipped) == NAMES
    for automation in shipped:
        # each survives the trip through the API's JSON, and notifies through the block
        again = AutomationCore.model_validate_json(automation.model_dump_json())
        assert again == automation
        assert [a.model_dump()["block_document_id"] for a in automation.actions] == [block]
    failed, rejects, late = (_trigger(a) for a in shipped)
    assert failed.posture == Posture.Reactive and "prefect.flow-run.Failed" in failed.expect
    assert rejects.expect == {FINISHED} and rejects.match.get(OVER_LABEL) == ["true"]
    assert late.posture == Posture.Proactive and late.within == timedelta(minutes=minutes)
    assert late.expect == {"prefect.flow-run.Completed*"}  # "Completed with rejects" too
    assert late.for_each == {"prefect.resource.id"}


def test_a_night_with_no_file_is_late_and_a_night_with_rejects_is_not() -> None:
    # Prefect names a flow run's state events after the state's name: a landing-folder run that
    # found nothing ends "Nothing new" (a Completed type), which must not satisfy the deadline.
    (late,) = (
        _trigger(a)
        for a in automations(uuid4(), AlertConfig(0, timedelta(hours=4), "nightly"))
        if a.name == LATE
    )
    completed = {
        name: any(matches(expected, f"prefect.flow-run.{name}") for expected in late.expect)
        for name in ("Completed", WITH_REJECTS, NOTHING_NEW, "Failed", "Crashed")
    }
    assert completed == {
        "Completed": True,
        WITH_REJECTS: True,
        NOTHING_NEW: False,
        "Failed": False,
        "Crashed": False,
    }


@given(value=st.integers(10, 10**6), unit=st.sampled_from(["", "s", "m", "h"]))
def test_durations(value: int, unit: str) -> None:
    seconds = value * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]
    assert parse_duration(f"{value}{unit}") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["9", "5s", "soon", "4d", "-1h", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)


def _alerts(*args: str, api: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "CUSTSYNC_"))}
    if api:
        env["PREFECT_API_URL"] = api
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "alerts", "apply", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "give --webhook-url URL or --block TYPE/NAME"),
        (("--webhook-url", "http://x/y", "--block", "slack-webhook/ops"), "one of them"),
        (("--block", "ops"), "expected TYPE/NAME"),
        (("--webhook-url", "ftp://x"), "http(s) URL"),
        (("--webhook-url", "http://x/y", "--deadline", "5s"), "--deadline"),
        (("--webhook-url", "http://x/y"), "set PREFECT_API_URL"),
    ],
)
def test_apply_refuses_bad_usage_with_one_line(args: tuple[str, ...], expected: str) -> None:
    done = _alerts(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_apply_without_a_server_is_exit_2() -> None:
    done = _alerts("--webhook-url", "http://127.0.0.1:9/hook", api="http://127.0.0.1:9/api")
    assert done.returncode == 2 and "does not answer" in done.stderr
    assert "Traceback" not in done.stderr


def test_custsync_help_lists_alerts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "alerts" in done.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "alerts", "apply", "--help"],
        capture_output=True,
        text=True,
    )
    assert usage.returncode == 0 and "--rejects-threshold" in usage.stdout
