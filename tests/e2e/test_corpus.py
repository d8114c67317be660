"""The bad-input corpus through the real command line, against a fresh and an existing state.

Each case of :mod:`tests.e2e.corpus` runs as ``custsync sync … --target sumup --json``, once
with a new state file and once with a copy of a state file that already holds the 40 customers
of ``data/customers.csv``. The runs share one ``prefect server`` and one sandbox, and are forked
from one warm interpreter (:mod:`tests.e2e.cli_runner`) two at a time; two cases also run as
plain ``python -m pipelines.cli`` subprocesses to show that the forked runs end the same way.
Checked per run: the exit code; no traceback anywhere; for exit 2 and 3 one clear line naming
the file (and line); for exit 1 the rejects stored with key, field and rule and nothing sent
for those rows; what reached the sandbox; and that no snapshot row recorded before was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.providers.sumup import customer_id as sumup_customer_id
from connectors.sandbox.server import SandboxServer
from tests.e2e.cli_runner import Done, ForkingCli, Job
from tests.e2e.conftest import CREDENTIALS, DAY1
from tests.e2e.corpus import CASES, Case
from tests.e2e.prefect_server import PrefectServer

pytestmark = pytest.mark.e2e

TARGET = "sumup"
STATES = ("fresh", "snapshot")
# rich wraps stderr at the terminal width, 80 columns when it is not a terminal, which splits
# any message naming a long temporary path; the message itself is one line.
WIDE = {"COLUMNS": "1000"}
SnapshotRows = dict[str, tuple[str, str, str]]


@dataclass(frozen=True)
class Run:
    """One case, run once against one state."""

    case: Case
    state: str
    fmt: str
    args: list[str]
    state_file: Path
    before: SnapshotRows

    @property
    def id(self) -> str:
        return f"{self.case.name}-{self.state}-{self.fmt}"

    def key(self, template: str) -> str:
        return template.replace("{tag}", self.id)


@dataclass(frozen=True)
class Corpus:
    """Every run's inputs, how it ended, and what the sandbox holds afterwards."""

    runs: dict[str, Run]
    done: dict[str, Done]
    remote: dict[str, dict[str, Any]]
    env: dict[str, str]


PARAMS = [(c, s, f) for c in CASES for f in c.formats for s in STATES]


def _param(case: Case, state: str, fmt: str) -> Any:
    return pytest.param(case, state, fmt, id=f"{case.name}-{state}-{fmt}")


def runs_where(*, rc: tuple[int, ...] = (0, 1, 2, 3)) -> list[Any]:
    """The parameters of every run whose case ends in one of ``rc``."""
    return [_param(c, s, f) for c, s, f in PARAMS if c.rc in rc]


def read_snapshot(path: Path) -> SnapshotRows:
    """external_id → (content_hash, payload, status) of the target's snapshot rows."""
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT external_id, content_hash, payload, status FROM snapshot WHERE target = ?",
            [TARGET],
        ).fetchall()
    return {key: (content_hash, payload, status) for key, content_hash, payload, status in rows}


def query(path: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def env_for(sandbox: SandboxServer, state_file: Path) -> dict[str, str]:
    return {
        **CREDENTIALS,
        **WIDE,
        "CUSTSYNC_VERIFONE_BASE_URL": sandbox.base_url,
        "CUSTSYNC_SUMUP_BASE_URL": sandbox.base_url,
        "CUSTSYNC_STATE": str(state_file),
        "CUSTSYNC_CONFIG": str(state_file.with_name("absent.toml")),
        # The cases are about each dirty row (a third of a tiny extract): the reject-fraction
        # guard is off here and tested on its own (tests/e2e/test_outcome_states.py).
        "CUSTSYNC_MAX_REJECT_FRACTION": "1",
    }


def argv(run: Run) -> list[str]:
    return ["sync", *run.args, "--target", TARGET, "--json"]


@pytest.fixture(scope="module")
def corpus(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """Run the whole matrix once; the tests below read its results."""
    root = tmp_path_factory.mktemp("corpus")
    server = PrefectServer(root / "prefect-server").start()
    # Run logs stay on stderr (where the tests read them) instead of also going to the API.
    runner_env = {"PREFECT_API_URL": server.api_url, "PREFECT_LOGGING_TO_API_ENABLED": "false"}
    cli = ForkingCli(root / "output", runner_env)  # imports while the server starts
    try:
        server.wait()
        sandbox.admin.reset(config=True)
        base = root / "base" / "state.duckdb"
        base.parent.mkdir()
        first = cli.run(
            [Job("base", ["sync", str(DAY1), "--target", TARGET], env_for(sandbox, base))]
        )
        assert first["base"].rc == 0, first["base"].stdout + first["base"].stderr
        assert len(read_snapshot(base)) == 40
        # The remote copies go: a corpus run that sent anything for a sample key would show.
        sandbox.admin.reset()
        runs: dict[str, Run] = {}
        for case, state, fmt in PARAMS:
            directory = root / "cases" / f"{case.name}-{state}-{fmt}"
            directory.mkdir(parents=True)
            state_file = directory / "state.duckdb"
            if state == "snapshot":
                shutil.copy(base, state_file)
            probe = Run(case, state, fmt, [], state_file, {})
            args = case.build(directory, probe.id, fmt)
            run = Run(case, state, fmt, args, state_file, read_snapshot(state_file))
            runs[run.id] = run
        started, server_cpu = time.monotonic(), server.cpu_seconds()
        done = cli.run([Job(r.id, argv(r), env_for(sandbox, r.state_file)) for r in runs.values()])
        figures = {
            "matrix_s": round(time.monotonic() - started, 3),
            "server_cpu_s": round(server.cpu_seconds() - server_cpu, 3),
            "load_avg_1m": os.getloadavg()[0],
            "runs": {k: [d.seconds, d.cpu_s] for k, d in {**first, **done}.items()},
        }
        # Not asserted (never assert timings): kept next to the outputs for whoever measures.
        (root / "figures.json").write_text(json.dumps(figures, indent=1))
        remote = {c["customer_id"]: c for c in sandbox.admin.state()["sumup"]["customers"]}
        yield Corpus(runs, done, remote, {**runner_env, **env_for(sandbox, base)})
    finally:
        cli.close()
        server.stop()


def _get(corpus: Corpus, case: Case, state: str, fmt: str) -> tuple[Run, Done]:
    run_id = f"{case.name}-{state}-{fmt}"
    return corpus.runs[run_id], corpus.done[run_id]


def summary_of(done: Done) -> dict[str, Any] | None:
    """The ``--json`` summary (the last stdout line), or None when the run never started."""
    lines = done.stdout.strip().splitlines()
    if not lines:
        return None
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def error_line(done: Done) -> str:
    """The one message a stopped run gives: the summary's, or the CLI's ``error:`` line."""
    summary = summary_of(done)
    if summary is not None:
        return str(summary["message"])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: extract: "), lines[0]
    return lines[0].removeprefix("error: extract: ")


def meaningful_stderr(done: Done) -> list[str]:
    """stderr without blank lines and without Prefect's echo of the flow's final state."""
    return [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "Finished in state Failed(" not in line
    ]


def remote_value(customer: dict[str, Any], dotted: str) -> Any:
    value: Any = customer
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where())
def test_exit_code_and_never_a_traceback(corpus: Corpus, case: Case, state: str, fmt: str) -> None:
    _, done = _get(corpus, case, state, fmt)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert done.rc == case.rc, done.stdout + done.stderr
    summary = summary_of(done)
    if summary is not None:
        assert summary["exit_code"] == case.rc


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where(rc=(2, 3)))
def test_a_stopped_run_says_why_in_one_line(
    corpus: Corpus, case: Case, state: str, fmt: str
) -> None:
    _, done = _get(corpus, case, state, fmt)
    message = error_line(done)
    assert "\n" not in message and message.strip() == message
    for fragment in case.says:
        assert fragment in message, message
    assert "\x00" not in message and "Ann" not in message  # no customer data in the message
    stderr = meaningful_stderr(done)
    assert len(stderr) == 1 and message in stderr[0], done.stderr


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where(rc=(2, 3)))
def test_a_stopped_run_sends_nothing_and_keeps_the_snapshot(
    corpus: Corpus, case: Case, state: str, fmt: str
) -> None:
    run, done = _get(corpus, case, state, fmt)
    assert read_snapshot(run.state_file) == run.before
    summary = summary_of(done)
    if summary is not None:
        assert summary["calls"] == 0
    for suffix in ("A", "B"):
        assert sumup_customer_id(f"{run.id}-{suffix}") not in corpus.remote


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where(rc=(1,)))
def test_rejects_name_key_field_rule_and_are_never_sent(
    corpus: Corpus, case: Case, state: str, fmt: str
) -> None:
    run, done = _get(corpus, case, state, fmt)
    summary = summary_of(done)
    assert summary is not None, done.stderr
    stored = query(
        run.state_file,
        "SELECT external_id, field, rule, source_row, message FROM rejects WHERE run_id = ?",
        [summary["run_id"]],
    )
    assert {r[:3] for r in stored} == {tuple(run.key(v) for v in r) for r in case.rejects}
    assert len(stored) == case.reject_rows
    assert summary["rejected"] == len({r[0] for r in stored})  # counted per key
    assert all(case.reject_message in r[4] and r[3] is not None for r in stored), stored
    rejected = {run.key(r[0]) for r in case.rejects}
    planned = query(
        run.state_file,
        "SELECT DISTINCT p.external_id FROM plan p WHERE p.run_id = ? UNION "
        "SELECT DISTINCT p.external_id FROM calls c JOIN plan p USING (plan_id) WHERE c.run_id = ?",
        [summary["run_id"], summary["run_id"]],
    )
    assert rejected.isdisjoint(key for (key,) in planned)
    assert all(sumup_customer_id(key) not in corpus.remote for key in rejected)


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where(rc=(0, 1)))
def test_valid_rows_reach_the_provider_exactly_as_read(
    corpus: Corpus, case: Case, state: str, fmt: str
) -> None:
    run, done = _get(corpus, case, state, fmt)
    summary = summary_of(done)
    assert summary is not None, done.stderr
    assert summary["create"] == {
        "planned": len(case.sent),
        "succeeded": len(case.sent),
        "failed": 0,
    }
    for template, fields in case.sent.items():
        customer = corpus.remote.get(sumup_customer_id(run.key(template)))
        assert customer is not None, f"{run.key(template)} was not sent"
        for dotted, value in fields.items():
            assert remote_value(customer, dotted) == value, (dotted, customer)
    for fragment in case.warns:
        assert any(fragment in line and "WARNING" in line for line in done.stderr.splitlines())


@pytest.mark.parametrize(("case", "state", "fmt"), runs_where(rc=(0, 1)))
def test_nothing_already_recorded_is_lost(corpus: Corpus, case: Case, state: str, fmt: str) -> None:
    run, _ = _get(corpus, case, state, fmt)
    after = read_snapshot(run.state_file)
    assert {k: after.get(k) for k in run.before} == run.before
    assert set(after) - set(run.before) == {run.key(k) for k in case.sent}


@pytest.mark.parametrize(
    "name", ["missing_file", "ragged_row"], ids=["before-prefect", "inside-the-flow"]
)
def test_a_real_subprocess_ends_like_the_forked_run(corpus: Corpus, name: str) -> None:
    """The forked runner is a shortcut, not a different program: a plain process agrees."""
    case = next(c for c in CASES if c.name == name)
    run, forked = _get(corpus, case, "fresh", "csv")
    state_file = run.state_file.with_name("plain.duckdb")
    env = {**os.environ, **corpus.env, "CUSTSYNC_STATE": str(state_file)}
    plain = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    again = Done(run.id, plain.returncode, plain.stdout, plain.stderr, 0.0)
    assert again.rc == forked.rc == case.rc
    assert "Traceback" not in again.stdout + again.stderr
    assert error_line(again) == error_line(forked)
    assert len(meaningful_stderr(again)) == len(meaningful_stderr(forked)) == 1
