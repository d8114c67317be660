"""``custsync fleet TENANTS_FILE``: sync every tenant of a tenants file, as a Prefect fleet run.

A fleet is Prefect work: its child runs go to a work pool's workers. So the command needs a
Prefect API (``PREFECT_API_URL``) with the ``custsync-fleet`` and ``custsync-tenant-sync``
deployments and a worker. It validates the tenants file first (before importing Prefect: a
bad file costs no import), starts a run of the fleet deployment, waits for it and prints one
row per tenant and target, read back from the fleet run's results artifact.

Exit code: the fleet's, the highest of its runs' (0 every run ok; 1 some records failed or
were rejected; 2, 3, 4 or 70 as a failed tenant run's own code, so 4 when a provider refused
a tenant's credentials); 2 also for a bad tenants file, no Prefect API, no deployment, or a
fleet run that failed before it started any tenant run; 70 when the fleet run crashed.

``--audit`` starts nothing: it prints the cross-tenant audit from the Parquet files the runs
publish (:mod:`pipelines.commands.fleet_audit`), with no Prefect API needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, NoReturn

import click

from pipelines.commands import common
from pipelines.exit_codes import ExitCode

FLEET_DEPLOYMENT = "custsync-fleet/fleet-nightly"
"""The fleet's deployment (``prefect.yaml``); ``--deployment`` names another."""


def fail(message: str, code: ExitCode = ExitCode.BAD_INPUT) -> NoReturn:
    """One ``error:`` line and ``code`` (see :func:`pipelines.commands.common.fail`)."""
    common.fail(message, code)
    raise SystemExit(int(code))  # pragma: no cover - common.fail exits


def _api_url() -> str | None:
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    # A Prefect profile may set it: asking costs Prefect's import, paid only now.
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@click.command("fleet")
@click.argument("tenants_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Every tenant run plans and stores its plan only.")
@click.option("--json", "as_json", is_flag=True, help="Print the fleet summary as one JSON object.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the fleet run and print its summary, or print its id and return.",
)
@click.option(
    "--deployment",
    default=FLEET_DEPLOYMENT,
    show_default=True,
    help="The custsync-fleet deployment to run (<flow>/<deployment>).",
)
@click.option(
    "--audit",
    is_flag=True,
    help="Start nothing: print the last run of every tenant and target from the published "
    "Parquet audit (no Prefect API needed; runs in progress as of their last batch).",
)
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --audit: how many runs of each tenant and target.",
)
def fleet_command(
    tenants_file: str,
    dry_run: bool,
    as_json: bool,
    wait: bool,
    deployment: str,
    audit: bool,
    last: int,
) -> None:
    """Sync every tenant of TENANTS_FILE: one Prefect fleet run, a child run per tenant and
    target on the work pool's workers. Needs PREFECT_API_URL.

    \b
    Exit code: the fleet's: 0 every tenant run ok, 1 some records failed or were
    rejected, else the highest code of a failed tenant run (2 config, 3 guard,
    4 credentials refused, 70 internal); 2 for a bad tenants file or no Prefect API.

    With --audit: starts nothing; prints each tenant and target's last run(s) from the
    published Parquet audit (exit code 0; 2 for a bad tenants file).
    """
    from pipelines.tenants import TenantsError, load_tenants

    try:
        tenants = load_tenants(tenants_file)
    except TenantsError as exc:
        fail(str(exc))
    if audit:
        if dry_run:
            fail("--audit reads the published audit; it starts no run (drop --dry-run)")
        from pipelines.commands.fleet_audit import show_audit

        raise SystemExit(show_audit(tenants, last, as_json))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if os.environ.get("PREFECT_API_URL") is None:
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    url = _api_url()
    if not url:
        fail(
            "custsync fleet needs a Prefect API: set PREFECT_API_URL "
            "(a fleet's runs go to a work pool's workers)"
        )
    started = time.monotonic()
    outcome = asyncio.run(_run_fleet(str(tenants.path.absolute()), dry_run, wait, deployment, url))
    if not wait:
        started_line = f"started fleet run {outcome['name']} ({outcome['flow_run_id']})"
        click.echo(json.dumps(outcome) if as_json else started_line)
        return
    summary = outcome
    summary.setdefault("duration_s", round(time.monotonic() - started, 3))
    if as_json:
        click.echo(json.dumps(summary, default=str))
    else:
        _print(summary)
    raise SystemExit(int(summary["exit_code"]))


async def _run_fleet(
    tenants_file: str, dry_run: bool, wait: bool, deployment: str, url: str
) -> dict[str, Any]:
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectException

    try:
        run = await run_deployment(  # type: ignore[misc]
            name=deployment,
            parameters={"tenants_file": tenants_file, "dry_run": dry_run},
            timeout=None if wait else 0,
            poll_interval=2,
        )
    except ObjectNotFound:
        fail(
            f"no deployment {deployment} on {url}: deploy it first "
            "(prefect deploy --name fleet-nightly --name tenant-sync)"
        )
    except (httpx.HTTPError, OSError) as exc:
        fail(f"cannot reach the Prefect API at {url}: {type(exc).__name__}")
    except PrefectException as exc:
        fail(f"could not start the fleet run: {exc}")
    if not wait:
        return {"flow_run_id": str(run.id), "name": run.name}
    return await _summary(run)


async def _summary(run: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from pipelines.flows.fleet import RESULTS_KEY, summary_of_rows

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[RESULTS_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
            )
        )
    state = run.state
    message = (state.message if state is not None else None) or ""
    if not artifacts:
        # The fleet stopped before any tenant ran (its tenants file unreadable on the worker)
        # or crashed.
        crashed = state is not None and state.is_crashed()
        fail(
            f"fleet run {run.name} ended {state.name if state else 'Unknown'}: {message}",
            ExitCode.INTERNAL if crashed else ExitCode.BAD_INPUT,
        )
    data = artifacts[0].data
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else []
    summary = summary_of_rows(rows, _duration(run))
    summary["fleet_run_id"] = str(run.id)
    summary["fleet_run"] = run.name
    summary["message"] = message
    return summary


def _duration(run: Any) -> float:
    total = getattr(run, "total_run_time", None)
    return round(total.total_seconds(), 3) if total is not None else 0.0


def _print(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"custsync fleet ({summary.get('fleet_run', '')})")
    columns = ("tenant", "target", "result", "exit", "planned", "succeeded", "failed", "rejected")
    for name in (*columns, "s", "message"):
        table.add_column(name, overflow="fold")
    for r in summary["results"]:
        c = r["counts"]
        table.add_row(
            r["tenant"],
            r["target"],
            r["result"],
            str(r["exit_code"]),
            *(str(c.get(k, "")) for k in ("planned", "succeeded", "failed", "rejected")),
            f"{r['duration_s']:.1f}",
            str(r["message"])[:120],
        )
    console = Console(width=160)
    console.print(table)
    console.print(
        f"{summary['runs']} run(s): {summary['ok']} ok, {summary['rejects']} with rejects, "
        f"{summary['failed']} failed; exit code {summary['exit_code']}",
        highlight=False,
    )
