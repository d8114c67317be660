"""``custsync sandbox``: serve both provider APIs locally until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from connectors.sandbox.config import FAULT_KINDS, ConfigError, SandboxConfig


def _banner(base_url: str, config: SandboxConfig) -> str:
    rate = "unlimited" if config.rate_limit is None else f"{config.rate_limit:g} req/s"
    faults = (
        f"{config.fault_rate:g} ({', '.join(config.fault_kinds)})" if config.fault_rate else "off"
    )
    latency = f"{config.latency_ms:g} ms + jitter {config.jitter_ms:g} ms"
    return "\n".join(
        [
            "custsync sandbox: Verifone Customer API v2 and SumUp Customers API v0.1",
            f"  Verifone   {base_url}/v2/customer",
            f"    Authorization: Bearer {config.verifone_token}",
            f"    Authorization: Basic base64({config.verifone_user}:{config.verifone_api_key})",
            f"    entity_id {config.verifone_entity}; Bearer {config.verifone_scoped_token}"
            f" is limited to {', '.join(config.verifone_scoped_entities)}",
            f"  SumUp      {base_url}/v0.1/customers",
            f"    Authorization: Bearer {config.sumup_api_key}"
            f"  (read-only: {config.sumup_readonly_api_key};"
            f" no scopes: {config.sumup_forbidden_api_key})",
            f"  Admin      {base_url}/_sandbox/  (health, reset, counters, state, config, seed)",
            f"  Knobs      rate limit {rate} per credential, burst {config.burst};"
            f" latency {latency}; faults {faults}; seed {config.seed}",
            "Press Ctrl-C to stop.",
        ]
    )


@click.command("sandbox", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, envvar="CUSTSYNC_SANDBOX_HOST")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=int,
    envvar="CUSTSYNC_SANDBOX_PORT",
    help="0 picks a free port.",
)
@click.option("--rate-limit", type=float, help="Requests/s per credential [default: unlimited].")
@click.option("--burst", type=int, help="Token-bucket size [default: 10].")
@click.option("--latency-ms", type=float, help="Added to every API call [default: 0].")
@click.option("--jitter-ms", type=float, help="Uniform extra latency, 0..N ms [default: 0].")
@click.option("--fault-rate", type=float, help="Probability of a fault per call [default: 0].")
@click.option(
    "--fault-kinds", help=f"Comma-separated, of: {', '.join(FAULT_KINDS)} [default: all]."
)
@click.option("--seed", type=int, help="Seed for faults, latency and generated ids.")
@click.option("--sumup-api-key", help="[default: sup_sk_sandbox]")
@click.option("--verifone-token", help="Bearer token [default: sandbox-token].")
@click.option("--verifone-user", help="Basic auth user [default: sandbox-user].")
@click.option("--verifone-api-key", help="Basic auth API key [default: sandbox-key].")
@click.option("--verifone-entity", help="The entity id to use [default: sandbox-entity].")
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bound port to this file once listening.",
)
def sandbox_command(host: str, port: int, port_file: Path | None, **knobs: Any) -> None:
    """Serve both provider APIs locally (the sandbox).

    Prints its base URL (first line) and the credentials it accepts, then serves until
    Ctrl-C. Every option also reads CUSTSYNC_SANDBOX_<OPTION> (e.g. CUSTSYNC_SANDBOX_RATE_LIMIT).
    """
    from connectors.sandbox.server import SandboxError, run_sandbox

    try:
        config = SandboxConfig.from_env(**knobs)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc

    def ready(base_url: str) -> None:
        if port_file is not None:
            port_file.write_text(base_url.rsplit(":", 1)[1] + "\n", encoding="utf-8")
        click.echo(base_url)
        click.echo(_banner(base_url, config))
        sys.stdout.flush()

    try:
        run_sandbox(host, port, config, on_ready=ready)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it handled; the shutdown was already clean.
        pass
    click.echo("sandbox stopped", err=True)
