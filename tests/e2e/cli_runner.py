"""Run many ``custsync`` command lines fast: one warm interpreter forks a process per run.

A fresh ``python -m pipelines.cli sync …`` spends most of its time importing Prefect (measured
8–9 s of an 18 s run here under load; the run itself took 2.5–4 s against a running server).
``python -m tests.e2e.cli_runner`` imports the CLI and the flow once, then reads jobs (one JSON
object a line: ``id``, ``argv``, ``env``, ``stdout``, ``stderr``), and for each forks a child
that sets the job's environment, points file descriptors 1 and 2 at the job's files and calls
:func:`pipelines.cli.main` exactly as the console script does. The exit code is the child's
real exit status; an exception escaping ``main`` is printed as the interpreter would print it
(a ``Traceback``), so a test checking for tracebacks sees it. It prints one JSON line per
finished job: ``id``, ``rc``, ``seconds`` (wall) and ``cpu_s`` (the child's).

Forking is safe only while the parent has no other thread and has not started polars' thread
pool, DuckDB or an event loop; the runner checks the first and does nothing else before
forking. Prefect reads ``PREFECT_API_URL`` when imported, so it must be in the runner's own
environment (every job shares one Prefect server); ``CUSTSYNC_*`` settings are read per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARALLEL_ENV = "CUSTSYNC_TEST_RUNNER_PARALLEL"


def _child(job: dict[str, Any]) -> int:
    import pipelines.cli

    os.environ.update(job["env"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the jobs pipe is the runner's, not the command's
    os.close(devnull)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    try:
        pipelines.cli.main(job["argv"])
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _fork(job: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(job)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _run_batch(jobs: list[dict[str, Any]], parallel: int) -> None:
    pending = list(reversed(jobs))
    running: dict[int, tuple[str, float]] = {}
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop()
            running[_fork(job)] = (job["id"], time.monotonic())
        pid, status, usage = os.wait4(-1, 0)
        job_id, started = running.pop(pid)
        result = {
            "id": job_id,
            "rc": os.waitstatus_to_exitcode(status),
            "seconds": round(time.monotonic() - started, 3),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        }
        print(json.dumps(result), flush=True)
    print(json.dumps({"batch_done": True}), flush=True)


def main() -> None:
    """Serve batches (one JSON list of jobs a line), ``$CUSTSYNC_TEST_RUNNER_PARALLEL`` at once."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import pipelines.cli
    import pipelines.commands.sync
    import pipelines.flows.sync  # noqa: F401  (the import is the point: Prefect, polars, duckdb)

    if threading.active_count() != 1:
        sys.exit(f"cli_runner: {threading.active_count()} threads after import; cannot fork")
    parallel = max(1, int(os.environ.get(PARALLEL_ENV, "2")))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            _run_batch(json.loads(line), parallel)


@dataclass(frozen=True)
class Job:
    """One command line to run: ``custsync ARGV`` with ``ENV`` added to the runner's."""

    id: str
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Done:
    """How a job ended: its exit status and everything it printed."""

    id: str
    rc: int
    stdout: str
    stderr: str
    seconds: float
    cpu_s: float = 0.0


class ForkingCli:
    """The client side: start the runner (it imports while the caller does other work)."""

    def __init__(self, workdir: Path, env: dict[str, str], *, parallel: int = 2) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.cli_runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env, PARALLEL_ENV: str(parallel)},
            cwd=Path(__file__).resolve().parents[2],
        )
        self._ready = False

    def _line(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"cli_runner exited with {self._process.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def run(self, jobs: list[Job]) -> dict[str, Done]:
        """Run ``jobs`` (in parallel up to the runner's limit); results by job id."""
        if not self._ready:
            assert self._line() == {"ready": True}
            self._ready = True
        files = {j.id: (self.workdir / f"{j.id}.out", self.workdir / f"{j.id}.err") for j in jobs}
        batch = [
            {"id": j.id, "argv": j.argv, "env": j.env, "stdout": str(o), "stderr": str(e)}
            for j in jobs
            for o, e in [files[j.id]]
        ]
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(batch) + "\n")
        self._process.stdin.flush()
        done: dict[str, Done] = {}
        while "batch_done" not in (line := self._line()):
            out, err = files[line["id"]]
            done[line["id"]] = Done(
                line["id"],
                line["rc"],
                out.read_text(errors="replace"),
                err.read_text(errors="replace"),
                line["seconds"],
                line["cpu_s"],
            )
        return done

    def close(self) -> None:
        """End the runner (closing its input ends its loop)."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


if __name__ == "__main__":
    main()
