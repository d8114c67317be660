"""Internal errors: what a crash file holds and leaves out, and how a run ends on one."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest
from polars.exceptions import PanicException

from pipelines import crash
from pipelines.exit_codes import ExitCode
from pipelines.planning import plan
from pipelines.run import Run, RunSpec
from pipelines.state.store import StateStore

REPO = Path(__file__).resolve().parents[2]
CUSTOMER_VALUE = "zoe.2@example.com"
SECRET = "sup_sk_live_do_not_leak"


def _raise_chained() -> None:
    customer = {"email": CUSTOMER_VALUE, "api_key": SECRET}  # a local the file must not show
    try:
        raise KeyError(customer["email"])
    except KeyError as exc:
        raise ValueError(f"could not parse {customer}") from exc


def _caught(func: Any) -> BaseException:
    try:
        func()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


@pytest.mark.parametrize(
    ("exc", "internal"),
    [
        (ValueError("x"), True),
        (PanicException("x"), True),  # pyo3_runtime.PanicException derives from BaseException
        (KeyboardInterrupt(), False),
        (SystemExit(2), False),
        (GeneratorExit(), False),
        (asyncio.CancelledError(), False),
    ],
)
def test_only_bugs_are_internal(exc: BaseException, internal: bool) -> None:
    assert crash.is_internal(exc) is internal


def test_crash_text_has_frames_types_versions_and_no_message_or_local() -> None:
    exc = _caught(_raise_chained)
    text = crash.crash_text(exc, run_id="20261201T000000.000000Z-abcdef", argv=["custsync"])
    assert "20261201T000000.000000Z-abcdef" in text
    assert "_raise_chained" in text and "test_crash.py" in text  # the frames
    assert "KeyError" in text and "ValueError" in text  # the whole chain, with its link
    assert "direct cause" in text
    for package in ("custsync", "python", "polars", "duckdb", "prefect", "httpx", "os"):
        assert f"  {package} " in text, package
    assert "message withheld" in text
    assert CUSTOMER_VALUE not in text and SECRET not in text


def test_command_line_keeps_options_and_choices_only() -> None:
    argv = [
        "/venv/bin/custsync", "sync", "/home/ann/exports/acme.csv", "--target", "sumup",
        "--mode=mirror", "--state=/srv/state.duckdb", "--batch-size", "50", "--token", SECRET,
    ]  # fmt: skip
    assert crash.safe_argv(argv) == [
        "custsync", "sync", "<…>", "--target", "sumup", "--mode=mirror", "--state=<…>",
        "--batch-size", "50", "--token", "<…>",
    ]  # fmt: skip


def test_crash_file_goes_beside_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(crash.CRASH_DIR_ENV, raising=False)
    report = crash.record_crash(
        PanicException("boom"), run_id="r1", state=tmp_path / "s" / "state.duckdb", argv=[]
    )
    assert report.path is not None and report.path.parent == tmp_path / "s" / "crashes"
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600
    assert report.line() == (
        f"custsync: internal error (PanicException); details in {report.path} (run r1);"
        " please report it"
    )


def test_crash_dir_setting_wins_and_an_unwritable_one_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crash.CRASH_DIR_ENV, str(tmp_path / "mine"))
    report = crash.record_crash(ValueError(), run_id=None, state=None, argv=[])
    assert report.path is not None and report.path.parent == tmp_path / "mine"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(crash.CRASH_DIR_ENV, str(blocker / "crashes"))  # cannot be a folder
    fallback = crash.record_crash(ValueError(), run_id=None, state=None, argv=[])
    assert fallback.path is not None and fallback.path.is_file()
    assert fallback.path.parent.name == "custsync-crashes"
    fallback.path.unlink()


def _open_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("CUSTSYNC_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv(crash.CRASH_DIR_ENV, raising=False)
    spec = RunSpec(
        flow="sync",
        extract=(str(REPO / "data" / "customers.csv"),),
        target="sumup",
        dry_run=True,
        state=str(tmp_path / "state.duckdb"),
    )
    return Run.open(spec)


def test_a_panic_while_planning_ends_the_run_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def panic(*args: Any, **kwargs: Any) -> Any:
        raise PanicException(f"called `Option::unwrap()` on {CUSTOMER_VALUE}")

    monkeypatch.setattr("pipelines.planning.build_plan", panic)
    run = _open_run(tmp_path, monkeypatch)
    assert plan(run) == 0 and run.stopped
    summary = run.finish(duration_s=0.5)
    assert summary["status"] == "crashed" and summary["exit_code"] == ExitCode.INTERNAL == 70
    crash_file = Path(summary["crash_file"])
    assert crash_file.parent == tmp_path / "crashes"
    assert summary["message"] == f"internal error (PanicException); details in {crash_file}"
    text = crash_file.read_text()
    assert run.run_id in text and "_make_plan" in text and CUSTOMER_VALUE not in text
    with StateStore(tmp_path / "state.duckdb", read_only=True) as store:
        row = store.runs().row(0, named=True)
    assert (row["status"], row["exit_code"]) == ("crashed", 70)
    assert "PanicException" in row["summary"] and CUSTOMER_VALUE not in row["summary"]


def test_ctrl_c_in_a_stage_is_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("pipelines.planning.build_plan", interrupted)
    run = _open_run(tmp_path, monkeypatch)
    try:
        with pytest.raises(KeyboardInterrupt):
            plan(run)
        assert not run.stopped
    finally:
        run.store.close()
    assert not (tmp_path / "crashes").exists()


def test_a_user_error_keeps_its_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Ann\n")
    monkeypatch.setenv("CUSTSYNC_CONFIG", str(tmp_path / "absent.toml"))
    run = Run.open(
        RunSpec(flow="sync", extract=(str(bad),), target="sumup", state=str(tmp_path / "s.db"))
    )
    plan(run)
    summary = run.finish(duration_s=0.1)
    assert (summary["status"], summary["exit_code"]) == ("stopped", ExitCode.BAD_INPUT)
    assert "crash_file" not in summary and not (tmp_path / "crashes").exists()


def _single_line(err: str) -> Path:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].endswith("; please report it")
    path = Path(lines[0].split("details in ", 1)[1].split("; please", 1)[0])
    assert path.is_file()
    return path


def test_the_cli_entry_turns_a_bug_in_any_command_into_exit_70(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main

    state = tmp_path / "state.duckdb"
    StateStore(state).close()
    monkeypatch.delenv(crash.CRASH_DIR_ENV, raising=False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError(CUSTOMER_VALUE)

    monkeypatch.setattr(StateStore, "recent_runs", broken)
    with pytest.raises(SystemExit) as exited:
        main(["report", "--state", str(state)])
    assert exited.value.code == 70
    crash_file = _single_line(capsys.readouterr().err)
    assert crash_file.parent == tmp_path / "crashes"  # found through --state
    text = crash_file.read_text()
    assert "ZeroDivisionError" in text and "in _report" in text and CUSTOMER_VALUE not in text
    assert "command: custsync report --state <…>" in text


def test_a_flow_failing_with_a_bug_is_exit_70_and_with_a_user_error_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.states import Failed

    from pipelines.commands.common import run_and_exit

    monkeypatch.setenv(crash.CRASH_DIR_ENV, str(tmp_path))

    def failing(exc: BaseException) -> Any:
        async def call() -> Any:
            return Failed(data=exc)

        return call

    with pytest.raises(SystemExit) as exited:
        run_and_exit(failing(RuntimeError(CUSTOMER_VALUE)), as_json=True)
    assert exited.value.code == 70
    assert _single_line(capsys.readouterr().err).parent == tmp_path
    with pytest.raises(SystemExit) as exited:
        run_and_exit(failing(FileNotFoundError("customers.csv")), as_json=True)
    assert exited.value.code == 2
    assert "customers.csv" in capsys.readouterr().err
