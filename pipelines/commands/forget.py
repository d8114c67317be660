"""``custsync forget``: erase customers on request, at the provider and in the state file."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from pipelines.commands.common import fail
from pipelines.commands.options import ProviderChoice
from pipelines.exit_codes import ExitCode


def _read_keys(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is no part of the first key
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    return [line for line in text.splitlines() if line.strip()]


@click.command("forget")
@click.argument("external_ids", nargs=-1)
@click.option("--target", required=True, type=ProviderChoice(), help="The provider to erase at.")
@click.option(
    "--file",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file of keys to forget, one a line (with or instead of EXTERNAL_IDS).",
)
@click.option("--state", type=click.Path(dir_okay=False), help="The DuckDB state file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def forget_command(
    external_ids: tuple[str, ...],
    target: str,
    keys_file: Path | None,
    state: str | None,
    as_json: bool,
) -> None:
    """Erase the customers EXTERNAL_IDS (GDPR Art. 17) at a provider and in the state file.

    At the provider, as far as its API allows: Verifone deletes the customer; SumUp, which has
    no customer delete, deactivates every payment instrument and overwrites the personal
    details with empty values. Each key goes on the target's suppression list first (a later
    extract listing it is rejected, rule `forgotten`); once the provider confirmed, every
    personal value the state file holds of it is redacted, and the audit rows stay. With no key,
    completes the erasures an earlier run left unfinished.
    """
    from pipelines.forget import forget

    keys = [*external_ids, *(_read_keys(keys_file) if keys_file else [])]
    summary: dict[str, Any] = asyncio.run(
        forget(target, keys, keys_file=str(keys_file) if keys_file else None, state=state)
    )
    code = int(summary.get("exit_code", ExitCode.INTERNAL))
    if as_json:
        click.echo(json.dumps(summary, default=str))
    elif summary.get("run_id") is not None:
        erase = summary.get("erase") or {"planned": 0, "succeeded": 0, "failed": 0}
        click.echo(
            f"forget → {target}  run {summary['run_id']}: {erase['planned']} planned,"
            f" {erase['succeeded']} erased, {erase['failed']} failed;"
            f" {summary.get('calls', 0)} calls · {summary['duration_s']} s"
        )
        message = f": {summary['message']}" if summary.get("message") else ""
        click.echo(f"exit {code} {summary['status']}{message}")
    if code >= ExitCode.BAD_INPUT and summary.get("message"):
        click.echo(f"error: {summary['message']}", err=True)
    sys.exit(code)
