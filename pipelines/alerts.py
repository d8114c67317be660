"""Alerts: the Prefect Automations custsync ships, and the notification block they send through.

Three automations, evaluated by the Prefect server's triggers service:

- **run failed**: a custsync flow run (``custsync-*``: sync, migrate, audit report) ends
  ``Failed``, ``Crashed`` or ``TimedOut``.
- **rejects over threshold**: a sync or migrate run ends with more failed or rejected records
  than the threshold. Prefect triggers match labels, they do not compare numbers, so the flow
  compares: at its end it emits ``custsync.run.finished`` (:func:`finished_event`) with the
  counts in its payload and ``custsync.rejects-over-threshold`` (``true``/``false``) among its
  resource labels, against the threshold kept in the Prefect Variable
  ``custsync-rejects-threshold``; the automation matches ``true``.
- **nightly run not completed**: proactive; once a flow run tagged ``nightly`` is ``Pending``
  (a worker took it) or ``Late`` (none did), it expects a ``Completed`` state (``Completed with
  rejects`` included) within the deadline, and fires if none came: no file arrived, the run
  failed or hangs, or no worker ran it.

Each sends a notification through one block (:data:`BLOCK_NAME`, a Custom Webhook posting
``{"subject", "body", "text"}`` by default; any notification block, Slack, Teams or e-mail, in
its stead). :func:`apply` creates or updates all of it by name (``custsync alerts apply``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import AutomationCore
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

BLOCK_NAME = "custsync-alerts"
"""The Custom Webhook block :func:`apply` writes (``--webhook-url``)."""
THRESHOLD_VARIABLE = "custsync-rejects-threshold"
"""The Prefect Variable holding the rejects threshold the flows compare against."""
FINISHED = "custsync.run.finished"
"""The event a sync or migrate flow run emits at its end."""
OVER_LABEL = "custsync.rejects-over-threshold"
NIGHTLY_TAG = "nightly"
DEFAULT_DEADLINE = timedelta(hours=4)

FAILED = "custsync: run failed"
REJECTS = "custsync: rejects over threshold"
LATE = "custsync: nightly run not completed"
NAMES = (FAILED, REJECTS, LATE)
"""The automations' names: :func:`apply` updates the automation of each name in place."""

_WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}", "text": "{{subject}}\n{{body}}"}


@dataclass(frozen=True)
class AlertConfig:
    """What ``custsync alerts apply`` was asked for."""

    rejects_threshold: int = 0
    """A run alerts when more records than this failed or were rejected."""
    deadline: timedelta = DEFAULT_DEADLINE
    """A nightly run alerts when it has not completed this long after it was due."""
    nightly_tag: str = NIGHTLY_TAG


def automations(block_id: UUID, config: AlertConfig) -> list[AutomationCore]:
    """The three automations, notifying through block ``block_id``."""

    def notify(subject: str, body: str) -> list[Any]:
        return [SendNotification(block_document_id=block_id, subject=subject, body=body)]

    nightly = f"prefect.tag.{config.nightly_tag}"
    custsync_flow = ResourceSpecification({"prefect.resource.role": "flow", **_named("custsync-*")})
    return [
        AutomationCore(
            name=FAILED,
            description="A custsync flow run failed, crashed or timed out.",
            trigger=EventTrigger(
                expect={
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Crashed",
                    "prefect.flow-run.TimedOut",
                },
                match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
                match_related=custsync_flow,
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=notify(
                "custsync: {{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state.name }}",
                "{{ flow_run.state.message }}\nflow run: {{ flow_run.id }}"
                "{% if deployment %} (deployment {{ deployment.name }}){% endif %}",
            ),
        ),
        AutomationCore(
            name=REJECTS,
            description=(
                f"More than {config.rejects_threshold} record(s) of a custsync run failed or "
                f"were rejected (the threshold is the Prefect Variable {THRESHOLD_VARIABLE})."
            ),
            trigger=EventTrigger(
                expect={FINISHED},
                match=ResourceSpecification(
                    {"prefect.resource.id": "custsync.run.*", OVER_LABEL: "true"}
                ),
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=notify(
                "custsync: {{ event.payload.failed_records }} record(s) failed or rejected in"
                " run {{ event.payload.run_id }} (threshold {{ event.payload.threshold }})",
                "{{ event.payload.flow }} to {{ event.payload.target }}:"
                " {{ event.payload.rejected }} rejected, {{ event.payload.failed }} failed.\n"
                "custsync report --run {{ event.payload.run_id }}",
            ),
        ),
        AutomationCore(
            name=LATE,
            description=(
                f"A flow run tagged {config.nightly_tag} did not complete within"
                f" {config.deadline} of being due."
            ),
            trigger=EventTrigger(
                after={"prefect.flow-run.Pending", "prefect.flow-run.Late"},
                expect={"prefect.flow-run.Completed*"},  # and "Completed with rejects"
                match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
                match_related=ResourceSpecification(
                    {
                        "prefect.resource.role": "tag",
                        "prefect.resource.id": nightly,
                    }
                ),
                for_each={"prefect.resource.id"},  # each run has its own deadline
                posture=Posture.Proactive,
                threshold=1,
                within=config.deadline,
            ),
            actions=notify(
                "custsync: nightly run {{ flow_run.name }} not completed"
                f" within {config.deadline}",
                "It is {{ flow_run.state.name }}. No extract arrived, the run failed or hangs,"
                " or no worker ran it.\nflow run: {{ flow_run.id }}",
            ),
        ),
    ]


def _named(pattern: str) -> dict[str, str]:
    return {"prefect.resource.name": pattern}


def finished_event(
    summary: Mapping[str, Any], failed_records: int, threshold: int | None
) -> tuple[dict[str, str], dict[str, Any]]:
    """The resource and payload of a run's ``custsync.run.finished`` event.

    ``custsync.rejects-over-threshold`` is ``true`` when the run completed with rejects (exit
    code 1) and ``failed_records`` exceeds ``threshold``, ``false`` when not, ``unset`` when no
    threshold is configured.
    """
    run_id = str(summary.get("run_id") or "unrecorded")
    # Only a run that did its job with rejects (exit code 1, "Completed with rejects") counts:
    # one that stopped has the failed-run alert, and its count says little.
    finished_with_rejects = summary.get("exit_code") == 1
    over = (
        "unset"
        if threshold is None
        else str(finished_with_rejects and failed_records > threshold).lower()
    )
    resource = {
        "prefect.resource.id": f"custsync.run.{run_id}",
        "prefect.resource.name": run_id,
        "custsync.flow": str(summary.get("flow")),
        "custsync.target": str(summary.get("target")),
        "custsync.exit-code": str(summary.get("exit_code")),
        OVER_LABEL: over,
    }
    payload = {
        "run_id": run_id,
        "flow": summary.get("flow"),
        "target": summary.get("target"),
        "exit_code": summary.get("exit_code"),
        "rejected": summary.get("rejected", 0),
        "failed": failed_records - int(summary.get("rejected", 0) or 0),
        "failed_records": failed_records,
        "threshold": threshold,
    }
    return resource, payload


async def emit_finished(summary: Mapping[str, Any], failed_records: int) -> None:
    """Emit the run's ``custsync.run.finished`` event (inside its flow run: the event is related
    to the flow run, its flow and deployment), compared against the configured threshold."""
    from prefect.events import emit_event
    from prefect.logging import get_run_logger
    from prefect.variables import Variable

    threshold: int | None = None
    try:
        raw = await Variable.aget(THRESHOLD_VARIABLE)
        threshold = None if raw is None else int(str(raw))
    except (ValueError, RuntimeError, OSError) as exc:  # an alert is a nicety, not the run
        get_run_logger().warning("rejects threshold %s unreadable: %s", THRESHOLD_VARIABLE, exc)
    resource, payload = finished_event(summary, failed_records, threshold)
    emit_event(event=FINISHED, resource=resource, payload=payload)


@dataclass(frozen=True)
class Applied:
    """What :func:`apply` did: the block used, and each automation ``created`` or ``updated``."""

    block: str
    block_id: UUID
    automations: dict[str, str]


async def apply(config: AlertConfig, *, webhook_url: str | None, block: str | None) -> Applied:
    """Create or update (by name) the notification block, the threshold Variable and the three
    automations on the configured Prefect server.

    ``webhook_url`` writes the Custom Webhook block :data:`BLOCK_NAME`; ``block``
    (``block-type-slug/name``, e.g. ``slack-webhook/ops``) uses an existing block instead.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.variables import Variable

    async with get_client() as client:
        if block is not None:
            slug, _, name = block.partition("/")
            document = await client.read_block_document_by_name(name, block_type_slug=slug)
            block_id, used = document.id, block
        else:
            assert webhook_url is not None
            webhook = CustomWebhookNotificationBlock(
                name="custsync",
                url=webhook_url,
                json_data=dict(_WEBHOOK_JSON),
                headers=None,
                cookies=None,
            )
            block_id = await webhook.asave(BLOCK_NAME, overwrite=True, client=client)
            used = f"custom-webhook/{BLOCK_NAME}"
        await Variable.aset(THRESHOLD_VARIABLE, config.rejects_threshold, overwrite=True)
        done: dict[str, str] = {}
        for automation in automations(block_id, config):
            existing = await client.read_automations_by_name(automation.name)
            if existing:
                await client.update_automation(existing[0].id, automation)
                for duplicate in existing[1:]:  # made by hand, or by a race: one of each
                    await client.delete_automation(duplicate.id)
                done[automation.name] = "updated"
            else:
                await client.create_automation(automation)
                done[automation.name] = "created"
    return Applied(used, block_id, done)
