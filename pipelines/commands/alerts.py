"""``custsync alerts apply``: the Prefect Automations that alert on failed, rejecting and late runs.

The automations themselves are :mod:`pipelines.alerts`; this command applies them to the
Prefect server of ``PREFECT_API_URL``, creating or updating each by name (run it again to
change the threshold, the deadline or the webhook).
"""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import timedelta

import click

from pipelines.commands.common import check_prefect_api, fail, prefect_configured, prepare_prefect
from pipelines.exit_codes import ExitCode

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}
MIN_DEADLINE = timedelta(seconds=10)
"""Prefect's shortest window for a proactive trigger."""


def parse_duration(text: str) -> timedelta:
    """``90`` (seconds), ``90s``, ``45m``, ``4h`` → a timedelta; :class:`click.BadParameter`
    for anything else or for less than :data:`MIN_DEADLINE`."""
    match = _DURATION.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 600, 45m or 4h")
    value = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2) or "s"])
    if value < MIN_DEADLINE:
        raise click.BadParameter(f"{text!r} is shorter than Prefect's minimum of 10 s")
    return value


@click.group("alerts")
def alerts_command() -> None:
    """Prefect Automations that notify on failed runs, rejects and late nightly runs."""


@alerts_command.command("apply")
@click.option(
    "--webhook-url",
    envvar="CUSTSYNC_ALERT_WEBHOOK_URL",
    help="POST alerts here (JSON: subject, body, text), through the Custom Webhook block"
    " custsync-alerts. Env: CUSTSYNC_ALERT_WEBHOOK_URL.",
)
@click.option(
    "--block",
    metavar="TYPE/NAME",
    help="Send through an existing notification block instead, e.g. slack-webhook/ops,"
    " ms-teams-webhook/ops, email/ops.",
)
@click.option(
    "--rejects-threshold",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Alert when more records than this failed or were rejected in one run.",
)
@click.option(
    "--deadline",
    default="4h",
    show_default=True,
    help="Alert when a nightly run has not completed this long after it was due"
    " (600, 45m, 4h; at least 10 s).",
)
@click.option(
    "--nightly-tag", default="nightly", show_default=True, help="The nightly deployments' tag."
)
def apply_command(
    webhook_url: str | None,
    block: str | None,
    rejects_threshold: int,
    deadline: str,
    nightly_tag: str,
) -> None:
    """Create or update the notification block and the three automations (by name)."""
    if (webhook_url is None) == (block is None):
        fail("give --webhook-url URL or --block TYPE/NAME (one of them)")
    if block is not None and "/" not in block.strip("/"):
        fail(f"--block {block!r}: expected TYPE/NAME, e.g. slack-webhook/ops")
    if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
        fail("--webhook-url must be an http(s) URL")
    try:
        within = parse_duration(deadline)
    except click.BadParameter as exc:
        fail(f"--deadline: {exc.message}")
        return
    if not prefect_configured():
        fail(
            "alerts live on a Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)"
        )
    prepare_prefect(verbose=False)
    check_prefect_api()
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    from pipelines.alerts import AlertConfig, apply

    config = AlertConfig(rejects_threshold, within, nightly_tag)
    try:
        applied = asyncio.run(apply(config, webhook_url=webhook_url, block=block))
    except ObjectNotFound:
        fail(f"no notification block {block!r} on the Prefect server")
        return
    except (PrefectHTTPStatusError, ValueError) as exc:
        fail(f"the Prefect server refused the alerts: {' '.join(str(exc).split())[:300]}")
        return
    click.echo(f"notification block {applied.block} ({applied.block_id})")
    for name, what in applied.automations.items():
        click.echo(f"automation {name!r}: {what}")
    click.echo(f"rejects threshold {rejects_threshold}, nightly deadline {within}")
    sys.exit(int(ExitCode.OK))
