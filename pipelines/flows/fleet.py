"""The fleet: one child run per tenant and target, on a work pool, and a summary of them all.

:func:`fleet_flow` reads the tenants file, starts one ``custsync-tenant-sync`` flow run per
tenant and target with ``run_deployment`` (a subflow of the fleet's run, picked up by the
deployment's work pool's workers), waits for all of them, and publishes a markdown artifact:
per tenant and target its result, counts and duration. One tenant failing never stops the
others; the fleet's state is ``Failed`` when any failed, its message saying how many.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import PrefectException
from prefect.states import Completed, Failed, State

from pipelines.audit_view import published_summary
from pipelines.exit_codes import ExitCode
from pipelines.flows.sync import NOTHING_NEW, WITH_REJECTS
from pipelines.state.store import StateError, StateStore
from pipelines.summary import SUMMARY_ACTIONS
from pipelines.tenants import TenantsError, TenantsFile, load_tenants

TENANT_DEPLOYMENT = "custsync-tenant-sync/tenant-sync"
"""The child runs' deployment (``prefect.yaml``), as ``<flow name>/<deployment name>``."""
ARTIFACT_KEY = "custsync-fleet"
RESULTS_KEY = "custsync-fleet-results"
"""A table artifact of the fleet run's rows (:func:`result_rows`): what ``custsync fleet``
reads back, since the fleet's result is not persisted."""


@dataclass(frozen=True)
class TenantResult:
    """How one tenant's run against one target ended, as the fleet reports it."""

    tenant: str
    target: str
    result: str
    """``ok``, ``rejects`` (records failed or were rejected), ``failed`` (the run stopped,
    crashed or could not be started)."""
    exit_code: int
    state: str
    """The child flow run's state name (``Completed``, ``Failed``...)."""
    message: str
    duration_s: float
    flow_run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """planned / succeeded / failed actions and rejected rows, from the run's state file."""

    @property
    def failed(self) -> bool:
        """Whether this run counts as a failure of the fleet."""
        return self.result == "failed"


def _exit_code(state_name: str, summary: dict[str, Any] | None) -> int:
    if summary is not None and isinstance(summary.get("exit_code"), int):
        return int(summary["exit_code"])
    if state_name in ("Completed", NOTHING_NEW):  # a landing folder with nothing new is ok
        return int(ExitCode.OK)
    if state_name == WITH_REJECTS:
        return int(ExitCode.RECORDS_FAILED)
    if state_name == "Crashed":
        return int(ExitCode.INTERNAL)
    return int(ExitCode.BAD_INPUT)


def _counts(summary: dict[str, Any] | None) -> dict[str, int]:
    if summary is None:
        return {}
    out = {"planned": 0, "succeeded": 0, "failed": 0}
    for action in SUMMARY_ACTIONS:
        tally = summary.get(action)
        if action == "unchanged" or not isinstance(tally, dict):
            continue
        for key in out:
            out[key] += int(tally.get(key, 0))
    out["unchanged"] = int((summary.get("unchanged") or {}).get("planned", 0))
    out["rejected"] = int(summary.get("rejected", 0))
    return out


def recorded_summary(state_file: Path, flow_run_id: str) -> dict[str, Any] | None:
    """The summary a child run recorded in its state file (the audit record: counts are read
    from there, not carried back through Prefect), or ``None`` if it recorded none."""
    if not state_file.exists():
        return None
    try:
        with StateStore(state_file, read_only=True) as store:
            rows = store.query(
                "SELECT summary FROM runs WHERE prefect_flow_run_id = ? "
                "ORDER BY started_at DESC LIMIT 1",
                [flow_run_id],
            )
    except (StateError, duckdb.Error, OSError):
        return None
    if rows.height == 0 or rows["summary"][0] is None:
        return None
    value = json.loads(rows["summary"][0])
    return value if isinstance(value, dict) else None


def result_of(
    tenants: TenantsFile, tenant: str, target: str, run: FlowRun, duration_s: float
) -> TenantResult:
    """The :class:`TenantResult` of a finished child flow run."""
    state = run.state
    name = (state.name if state is not None else None) or "Unknown"
    summary = recorded_summary(tenants.state_file(tenant, target), str(run.id))
    if summary is None:  # the child ran where its state file is out of reach: its audit
        summary = published_summary(tenants.audit_folder(), tenant, target, str(run.id))
    code = _exit_code(name, summary)
    if state is None or not state.is_completed() or code >= ExitCode.BAD_INPUT:
        result = "failed"
    else:
        result = "rejects" if code == ExitCode.RECORDS_FAILED else "ok"
    message = (state.message if state is not None else None) or ""
    if summary is not None and summary.get("message"):
        message = str(summary["message"])
    return TenantResult(
        tenant=tenant,
        target=target,
        result=result,
        exit_code=code,
        state=name,
        message=message,
        duration_s=round(duration_s, 3),
        flow_run_id=str(run.id),
        counts=_counts(summary),
    )


async def _child(
    tenants: TenantsFile, tenant: str, target: str, deployment: str, dry_run: bool, poll_s: float
) -> TenantResult:
    started = time.monotonic()
    try:
        run = await run_deployment(  # type: ignore[misc]
            name=deployment,
            parameters={
                "tenants_file": str(tenants.path.absolute()),
                "tenant": tenant,
                "target": target,
                "dry_run": dry_run,
            },
            flow_run_name=f"{tenant}-{target}",
            timeout=None,
            poll_interval=poll_s,
            tags=["custsync", "fleet", f"tenant:{tenant}"],
            as_subflow=True,
        )
    except (PrefectException, httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
        # The run could not even be created (no such deployment, API down): this tenant
        # fails, the others go on.
        return TenantResult(
            tenant=tenant,
            target=target,
            result="failed",
            exit_code=int(ExitCode.BAD_INPUT),
            state="NotStarted",
            message=f"{type(exc).__name__}: {exc}",
            duration_s=round(time.monotonic() - started, 3),
        )
    return result_of(tenants, tenant, target, run, time.monotonic() - started)


def fleet_summary(results: list[TenantResult], duration_s: float) -> dict[str, Any]:
    """The fleet's summary: totals, its exit code (the worst of its runs') and every run."""
    failed = sum(r.failed for r in results)
    return {
        "runs": len(results),
        "ok": sum(r.result == "ok" for r in results),
        "rejects": sum(r.result == "rejects" for r in results),
        "failed": failed,
        "exit_code": max((r.exit_code for r in results), default=int(ExitCode.OK)),
        "duration_s": round(duration_s, 3),
        "results": [asdict(r) for r in results],
    }


def result_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's runs as flat rows (their counts as columns): the results artifact."""
    rows = []
    for r in summary["results"]:
        row = {k: v for k, v in r.items() if k != "counts"}
        row.update(r["counts"])
        rows.append(row)
    return rows


def summary_of_rows(rows: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """The fleet summary (as :func:`fleet_summary`) of rows read back from the results
    artifact."""
    counted = ("planned", "succeeded", "failed", "unchanged", "rejected")
    results = [
        TenantResult(
            tenant=str(row["tenant"]),
            target=str(row["target"]),
            result=str(row["result"]),
            exit_code=int(row["exit_code"]),
            state=str(row["state"]),
            message=str(row.get("message") or ""),
            duration_s=float(row["duration_s"]),
            flow_run_id=row.get("flow_run_id"),
            counts={k: int(row[k]) for k in counted if row.get(k) is not None},
        )
        for row in rows
    ]
    return fleet_summary(results, duration_s)


def to_markdown(summary: dict[str, Any]) -> str:
    """The fleet's summary as the artifact shows it: one row per tenant and target."""
    lines = [
        "# custsync fleet",
        "",
        f"{summary['runs']} run(s): {summary['ok']} ok, {summary['rejects']} with rejects, "
        f"{summary['failed']} failed; exit code {summary['exit_code']}; "
        f"{summary['duration_s']} s",
        "",
        "| tenant | target | result | exit | planned | succeeded | failed | rejected "
        "| duration s | message |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["results"]:
        c = r["counts"]
        message = str(r["message"]).replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(
            f"| {r['tenant']} | {r['target']} | {r['result']} | {r['exit_code']} "
            f"| {c.get('planned', '')} | {c.get('succeeded', '')} | {c.get('failed', '')} "
            f"| {c.get('rejected', '')} | {r['duration_s']} | {message} |"
        )
    return "\n".join(lines) + "\n"


@flow(name="custsync-fleet", persist_result=False, validate_parameters=True)
async def fleet_flow(
    tenants_file: str,
    deployment: str = TENANT_DEPLOYMENT,
    dry_run: bool = False,
    poll_interval_s: float = 5.0,
) -> State[Any]:
    """Sync every tenant of the tenants file to each of its targets, one child run each.

    Args:
        tenants_file: the tenants file (TOML; see :mod:`pipelines.tenants`).
        deployment: the ``custsync-tenant-sync`` deployment the child runs are made from.
        dry_run: every child plans and stores its plan, and sends nothing.
        poll_interval_s: how often the state of each child run is polled.
    """
    logger = get_run_logger()
    started = time.monotonic()
    try:
        tenants = load_tenants(tenants_file)
    except TenantsError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc), data={"exit_code": int(ExitCode.BAD_INPUT)})
    pairs = tenants.runs()
    logger.info("%d tenant(s), %d run(s)", len(tenants.tenants), len(pairs))
    results = list(
        await asyncio.gather(
            *(
                _child(tenants, t.id, target, deployment, dry_run, poll_interval_s)
                for t, target in pairs
            )
        )
    )
    summary = fleet_summary(results, time.monotonic() - started)
    try:
        await acreate_markdown_artifact(
            to_markdown(summary), key=ARTIFACT_KEY, description="custsync fleet summary"
        )
        await acreate_table_artifact(
            result_rows(summary), key=RESULTS_KEY, description="custsync fleet: one row a run"
        )
    except (RuntimeError, ValueError) as exc:  # a nicety: never lose the fleet's end for it
        logger.warning("could not create the fleet artifact: %s", exc)
    if summary["failed"]:
        names = ", ".join(f"{r.tenant}/{r.target}" for r in results if r.failed)
        message = f"{summary['failed']} of {summary['runs']} tenant run(s) failed: {names}"
        logger.error("%s", message)
        return Failed(message=message, data=summary)
    return Completed(message=f"{summary['runs']} tenant run(s) done", data=summary)
