"""``custsync demo``: the whole product on the sandbox, in under a minute.

Starts the sandbox, seeds customers the providers "already hold" and payment instruments, migrates
the sample extract into both providers (adopting, not duplicating, what exists), syncs the next
day's extract (updates, closures, deletions, instrument deactivations, invalid rows), runs once
more to show a no-op, then prints where the audit trail is and three SQL queries over it
(the last: what custsync changed for the customer edited in the portal, before and after).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console

from connectors.providers.registry import get_provider
from pipelines.commands.common import prepare_prefect, print_frame, print_summary

DATA = Path("data")
DAY1 = DATA / "customers.csv"
DAY2 = DATA / "customers_day2.csv"
DEMO_REJECTS = 0.1
"""The reject guard's fraction for the sample's day 2 (3 of 42 rows invalid, on purpose)."""


def _rows(path: Path) -> list[dict[str, Any]]:
    return pl.read_csv(path, infer_schema=False).to_dicts()


def _verifone_body(row: dict[str, Any], entity: str) -> dict[str, Any]:
    """A customer as someone created it by hand in Verifone before custsync (other phone)."""
    body: dict[str, Any] = {"entity_id": entity, "email_address": row["email"]}
    if row.get("company_name"):
        body["company_name"] = row["company_name"]
    else:
        body["billing"] = {"first_name": row["first_name"], "last_name": row["last_name"]}
    body["phone_number"] = "+31 20 000 0000"
    return body


def _seed(admin: Any, day1: list[dict[str, Any]]) -> Path:
    """Pre-existing customers and instruments; returns the instruments extract for day 2."""
    from connectors.providers.sumup import customer_id as sumup_customer_id

    with_email = [r for r in day1 if r.get("email")]
    admin.seed_verifone([_verifone_body(r, "sandbox-entity") for r in with_email[:3]])
    existing = [
        {
            "customer_id": sumup_customer_id(r["external_id"]),
            "personal_details": {"first_name": r.get("first_name"), "email": r.get("email")},
        }
        for r in day1[3:6]
    ]
    admin.seed_sumup(existing)
    tokens: list[tuple[str, str]] = []
    for r in day1[3:6]:
        seeded = admin.seed_instruments(sumup_customer_id(r["external_id"]), 2)
        tokens.append((r["external_id"], seeded[0]["token"]))
    out = DATA / "generated" / "instruments_day2.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(tokens[:2], schema=["external_id", "token"], orient="row").write_csv(out)
    return out


async def _demo(state: Path, console: Console) -> int:
    from connectors.providers.sumup import customer_id as sumup_customer_id
    from connectors.sandbox.config import SandboxConfig
    from connectors.sandbox.server import SandboxServer
    from pipelines.flows.migrate import migrate_flow
    from pipelines.flows.sync import sync_flow

    worst = 0
    with SandboxServer(SandboxConfig()) as sb:
        console.rule(f"sandbox on {sb.base_url}")
        os.environ.update(
            {
                "CUSTSYNC_VERIFONE_BASE_URL": sb.base_url,
                "CUSTSYNC_SUMUP_BASE_URL": sb.base_url,
                "CUSTSYNC_VERIFONE_TOKEN": "sandbox-token",
                "CUSTSYNC_VERIFONE_ENTITY_ID": "sandbox-entity",
                "CUSTSYNC_SUMUP_API_KEY": "sup_sk_sandbox",
                "CUSTSYNC_STATE": str(state),
            }
        )
        day1, day2 = _rows(DAY1), _rows(DAY2)
        instruments = _seed(sb.admin, day1)
        console.print(
            "seeded 3 Verifone and 3 SumUp customers the providers already hold, "
            "and 2 payment instruments for each SumUp one",
            highlight=False,
        )

        async def show(title: str, state_: Any) -> None:
            nonlocal worst
            console.rule(title)
            summary = await state_.result(raise_on_failure=False)
            print_summary(summary, as_json=False)
            worst = max(worst, int(summary["exit_code"]))

        for target in ("verifone", "sumup"):
            await show(
                f"day 1: migrate {DAY1} → {target}",
                await migrate_flow(extract=[str(DAY1)], target=target, return_state=True),
            )
        # customers that close on day 2 get an instrument once day 1 has created them
        for row in day2:
            if (row.get("status") or "").lower() == "closed":
                sb.admin.seed_instruments(sumup_customer_id(row["external_id"]), 1)
        edited = _edit_outside_custsync(sb.base_url, state, day1, day2)
        console.print(
            f"someone edits {edited}'s work phone in the Verifone portal (outside custsync): "
            "day 2 keeps that edit and reports it as drift",
            highlight=False,
        )
        for target in ("verifone", "sumup"):
            has_instruments = get_provider(target).capabilities.instruments
            extra = {"instruments": [str(instruments)]} if has_instruments else {}
            await show(
                f"day 2: sync {DAY2} → {target} (mirror; its 3 invalid rows of 42 are over the "
                f"5 % reject guard: --max-reject-fraction {DEMO_REJECTS} lets them through)",
                await sync_flow(
                    extract=[str(DAY2)],
                    target=target,
                    mode="mirror",
                    allow_deletes=True,
                    max_reject_fraction=DEMO_REJECTS,
                    return_state=True,
                    **extra,
                ),
            )
        for target in ("verifone", "sumup"):
            await show(
                f"day 3: the same extract again → {target} (nothing to do)",
                await sync_flow(
                    extract=[str(DAY2)],
                    target=target,
                    mode="mirror",
                    max_reject_fraction=DEMO_REJECTS,
                    return_state=True,
                ),
            )
    _show_sql(state, edited, console)
    return worst


def _edit_outside_custsync(
    base_url: str, state: Path, day1: list[dict[str, Any]], day2: list[dict[str, Any]]
) -> str:
    """Edit, through the provider's API, a customer the day-2 extract also changes."""
    import httpx

    from pipelines.state.store import StateStore

    before = {r["external_id"]: r for r in day1}
    changed = [
        r["external_id"]
        for r in day2
        if r["external_id"] in before and r != before[r["external_id"]] and r["status"] == "active"
    ]
    external_id = changed[0]
    with StateStore(state, read_only=True) as store:
        snapshot = store.snapshot("verifone", columns=["external_id", "remote_id"])
    (remote_id,) = snapshot.filter(pl.col("external_id") == external_id)["remote_id"]
    with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer sandbox-token"}) as c:
        record = c.get(f"/v2/customer/{remote_id}").raise_for_status().json()
        for key in ("id", "created_at", "updated_at"):
            record.pop(key, None)
        record["work_phone"] = "+49 40 555 9999"
        c.post(f"/v2/customer/{remote_id}", json=record).raise_for_status()
    return external_id


def _show_sql(state: Path, external_id: str, console: Console) -> None:
    from pipelines.state.queries import EXAMPLE_QUERIES
    from pipelines.state.store import StateStore

    console.rule("the audit trail")
    console.print(f"DuckDB file: [bold]{state.resolve()}[/]  (open it with duckdb or any SQL tool)")
    with StateStore(state, read_only=True) as store:
        for title, sql in EXAMPLE_QUERIES:
            console.print(f"\n[bold]{title}[/]\n[cyan]{sql}[/]", highlight=False)
            params = [external_id] if "?" in sql else []
            print_frame(store.query(sql, params), console)


@click.command("demo")
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    default="data/demo.duckdb",
    show_default=True,
    help="Where the demo's DuckDB file goes (replaced on every demo).",
)
def demo_command(state: str) -> None:
    """Run custsync end to end on the local sandbox (no provider account needed)."""
    if not DAY1.is_file() or not DAY2.is_file():
        raise click.ClickException("run the demo from the repository root (data/ not found)")
    path = Path(state)
    for stale in (path, Path(f"{path}.wal")):
        stale.unlink(missing_ok=True)
    prepare_prefect(verbose=False)
    console = Console() if Console().is_terminal else Console(width=120)
    worst = asyncio.run(_demo(path, console))
    console.print(f"\ndemo finished; worst exit code {worst} (1 = the invalid rows were rejected)")
