"""Execute one batch of planned actions against a provider, concurrently; say what happened.

The executor is asyncio inside one Prefect task per batch (never a task per record). It turns
plan rows into connector calls and returns everything the state store needs to record the batch
in one transaction: the outcome of every record, the fields each success changed (before and
after) and the snapshot rows to advance (confirmed successes only). It never writes to DuckDB
itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.errors import FatalError, ProviderError, UnknownOutcome
from connectors.http import call_ref
from connectors.protocol import CreateResult, CustomerConnector, OwnedHook
from pipelines.adoption import AMBIGUOUS
from pipelines.batch import (
    BatchResult,
    ExecutionOptions,
    HaltHook,
    PlanRow,
    ProgressHook,
    gather_or_halt,
)
from pipelines.state.frames import SnapshotRow
from transforms.mapping import content_hash, content_key, payload_from_remote
from transforms.merge import FieldChange, create_changes, remove_changes, three_way_merge

ERASE = "erase"
"""The action of a ``custsync forget`` plan row (:mod:`pipelines.forget`)."""
OwnersHook = Callable[[Sequence[str]], Mapping[str, str]]
"""Given remote ids, the snapshot key owning each (absent: none): the state store's view."""
TWIN_HELD = "TWIN_UNCONFIRMED"
"""Error code of a twin create not sent because an identical create is unconfirmed."""
DEFAULT_WORKERS = 32
"""Rows of a batch in progress at once when the run does not say (:class:`BatchExecutor`'s
``workers``); the connector's limiter caps the requests in flight among them."""
Handler = Callable[[PlanRow, Mapping[str, dict[str, Any]], BatchResult], Awaitable[None]]


def _last_result(result: BatchResult, external_id: str) -> str:
    """The latest outcome recorded for ``external_id`` in ``result`` (``none`` without one)."""
    for outcome in reversed(result.outcomes):
        if outcome["external_id"] == external_id:
            return str(outcome["result"])
    return "none"


def _now() -> datetime:
    return datetime.now(UTC)


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(orjson.loads(text))


def _dumps(payload: Mapping[str, Any]) -> str:
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


class BatchExecutor:
    """Runs plan rows against one connector; one instance per run (it keeps no per-batch state).

    ``workers``: how many rows (chains of twins) are in progress at once; a little above the
    connector's in-flight cap keeps every slot busy while a row between calls runs Python.
    """

    def __init__(
        self,
        connector: CustomerConnector,
        *,
        run_id: str,
        options: ExecutionOptions | None = None,
        progress: ProgressHook | None = None,
        halt: HaltHook | None = None,
        owners: OwnersHook | None = None,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.connector = connector
        self.workers = workers
        self.target = connector.target
        self.run_id = run_id
        self.options = options or ExecutionOptions()
        self._progress = progress
        self._halt = halt or (lambda: None)
        self._owners: OwnersHook = owners or (lambda _ids: {})
        # twin group -> (key, outcome) of the create left unconfirmed; later twins wait for the
        # next run
        self._held: dict[str, tuple[str, str]] = {}
        self._handlers: dict[str, Handler] = {
            "create": self._create,
            "adopt": self._adopt,
            "update": self._update,
            "delete": self._close,
            "close": self._close,
            "deactivate": self._deactivate,
            ERASE: self._erase,
        }

    async def run(self, rows: Sequence[PlanRow]) -> BatchResult:
        """Execute ``rows`` concurrently (the connector's limiter bounds the pace).

        When the run stops mid-batch (``result.fatal``), rows not finished get no outcome here
        (a refused one is in ``result.refusals``): :func:`pipelines.halted.settle_unfinished`
        decides from their calls which are closed and which stay pending for reconciliation.
        """
        result = BatchResult()
        # Updates and adoptions merge with what the provider holds now (get-merge-post).
        updates = [r for r in rows if r.action in ("update", "adopt") and r.remote_id]
        remote: dict[str, dict[str, Any]] = {}
        try:
            if updates:
                # One bulk fetch per batch (Verifone: id=in=(...)), not one GET per record.
                remote = await self.connector.fetch_many(
                    [r.remote_id for r in updates if r.remote_id]
                )
        except FatalError as exc:
            result.fatal = exc
            return result
        except ProviderError as exc:
            # The bulk fetch failed for good: every update of this batch fails with that reason.
            for row in updates:
                self.fail(result, row, exc)
            failed = {r.plan_id for r in updates}
            rows = [r for r in rows if r.plan_id not in failed]
        result.fatal = await gather_or_halt(
            self._workers(self._chains(rows), remote, result), self._halt
        )
        return result

    def _workers(
        self,
        chains: list[list[PlanRow]],
        remote: Mapping[str, dict[str, Any]],
        result: BatchResult,
    ) -> list[Coroutine[Any, Any, None]]:
        """At most :attr:`workers` coroutines taking the chains in turn.

        One task per chain made a batch of 500 rows 500 tasks, all but a few queued on the
        limiter's in-flight semaphore: a future and a wake-up each, about a tenth of a
        create's CPU (issue 14). A stop ends them as it ended those tasks: chains not taken
        yet were never started, so they have no outcome, like a task cancelled before it ran
        (:func:`pipelines.halted.settle_unfinished` closes them).
        """
        pending = iter(chains)

        async def worker() -> None:
            for chain in pending:
                await self._chain(chain, remote, result)

        return [worker() for _ in range(min(self.workers, len(chains)))]

    def _chains(self, rows: Sequence[PlanRow]) -> list[list[PlanRow]]:
        """The rows in runs that go one after another: a twin group's creates form one run
        (in plan order), every other row is a run of its own."""
        twins = self.options.twins
        chains: dict[str, list[PlanRow]] = {}
        for row in rows:
            group = twins.group(row.external_id) if row.action == "create" else None
            chains.setdefault(group or f"\0{row.plan_id}", []).append(row)
        return list(chains.values())

    async def _chain(
        self, rows: Sequence[PlanRow], remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        """Run ``rows`` in order. A twin's create goes out only once every earlier twin of its
        group is confirmed (created, or adopted by an equal, un-owned match): while one is
        unknown, an identical create's look-up could find that one's customer and take it."""
        for row in rows:
            group = self.options.twins.group(row.external_id) if row.action == "create" else None
            blocker = self._held.get(group) if group is not None else None
            if blocker is not None:
                self._hold(result, row, *blocker)
                continue
            await self._one(row, remote, result)
            if group is not None and not result.claimed(row.external_id):
                self._held[group] = (row.external_id, _last_result(result, row.external_id))

    def _hold(self, result: BatchResult, row: PlanRow, blocker: str, blocked_by: str) -> None:
        """Record a twin not sent because ``blocker``'s create ended ``blocked_by``, not
        confirmed: ``ambiguous`` like it when it was (left for a person), else ``failed``."""
        self.record(
            result,
            row,
            "ambiguous" if blocked_by == "ambiguous" else "failed",
            error_class="TwinHeld",
            error_code=TWIN_HELD,
            message=f"not sent: {blocker} has the same content and its create is not confirmed"
            f" ({blocked_by}), so a look-up could not tell the two customers apart; retried next"
            " run",
        )
        if self._progress is not None:
            self._progress(1)

    async def _one(
        self, row: PlanRow, remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        call_ref.set(row.plan_id)
        try:
            handler = self._handlers.get(row.action)
            if handler is None:
                self.record(result, row, "skipped", message=row.reason or row.action)
            else:
                await handler(row, remote, result)
        except FatalError as exc:
            result.refusals[row.plan_id] = exc  # settled once the batch has stopped
            raise
        except UnknownOutcome as exc:
            # A create whose effect is unknown even after the connector's own reconciliation.
            # Its outcome carries no plan id, so recording it leaves the journal intent pending
            # (atomically): the next run reconciles it before anything is created again.
            self.fail(result, row, exc, keep_pending=row.action == "create")
        except ProviderError as exc:
            self.fail(result, row, exc)
        finally:
            if self._progress is not None:
                self._progress(1)

    # -- actions -------------------------------------------------------------------------------

    async def _create(
        self, row: PlanRow, _remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        payload = _loads(row.payload) or {}
        owned = self.owned_hook(result, row.external_id)
        adopted: dict[str, Any] | None = None
        if row.external_id in self.options.verify_first:
            # This key once shared a remote id with another key: its own customer may exist.
            looked = await self.connector.find_created(payload, owned=owned)
            if looked is not None and self._settle_created(row, looked, result) is None:
                return
            adopted = looked.record if looked is not None else None
        if adopted is not None:
            await self._converge(row, payload, adopted, result, outcome="adopted")
            return
        created = await self.connector.create(payload, owned=owned)
        record = self._settle_created(row, created, result)
        if record is None:
            return
        if created.outcome == "adopted":
            await self._converge(row, payload, record, result, outcome="adopted")
            return
        self._succeed(result, row, created.remote_id, payload, changes=create_changes(payload))

    async def _adopt(
        self, row: PlanRow, remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        """A migration's planned adoption: bring the customer found when planning in line with
        the source (:meth:`_converge`). Without a remote id, the look-up found several
        customers (``ambiguous``, left for a person) or failed; nothing is sent either way."""
        if row.remote_id is None:
            reason = row.reason or "no customer to adopt"
            outcome = "ambiguous" if reason.startswith(AMBIGUOUS) else "failed"
            self.record(result, row, outcome, message=f"{reason}: left for a person to resolve")
            return
        record = remote.get(row.remote_id)
        if record is None:
            self.record(
                result,
                row,
                "failed",
                error_code="NOT_FOUND",
                message=f"the customer found when planning ({row.remote_id}) no longer exists;"
                " the next migration looks again",
            )
            return
        owner = self.owner_of(result, row.remote_id)
        if owner not in (None, row.external_id):
            self.record(
                result,
                row,
                "failed",
                error_class="StateConflict",
                error_code="REMOTE_ID_OWNED",
                message=f"the customer found ({row.remote_id}) belongs to {owner}: not adopted",
            )
            return
        await self._converge(row, _loads(row.payload) or {}, record, result, outcome="adopted")

    def _settle_created(
        self, row: PlanRow, created: CreateResult, result: BatchResult
    ) -> dict[str, Any] | None:
        """The record a create (or look-up) gave ``row``; ``None`` once an outcome is recorded
        instead (ambiguous, or adopted but another key's)."""
        if created.outcome == "ambiguous":
            self.record(
                result,
                row,
                "ambiguous",
                message="create outcome unknown and several matching customers exist: "
                + ", ".join(created.candidates),
            )
            return None
        record = created.record or {}
        # A client-chosen id is the key's own (SumUp: a 409 means the same key): no look-up.
        if created.outcome == "adopted" and not self.connector.capabilities.client_ids:
            remote_id = self._remote_id(record)
            owner = self.owner_of(result, remote_id)
            if owner not in (None, row.external_id):
                # A connector without the ownership hook adopted another key's customer.
                self.record(
                    result,
                    row,
                    "failed",
                    error_class="StateConflict",
                    error_code="REMOTE_ID_OWNED",
                    message=f"the customer found ({remote_id}) belongs to {owner}: not adopted",
                )
                return None
        return record

    def owner_of(self, result: BatchResult, remote_id: str) -> str | None:
        """The key owning ``remote_id``: taken in this batch, else in the snapshot."""
        return result.claims.get(remote_id) or self._owners([remote_id]).get(remote_id)

    def owned_hook(self, result: BatchResult, external_id: str) -> OwnedHook:
        """The look-up filter for ``external_id``: ids that another key owns (the snapshot's
        keys and the ids taken earlier in this batch)."""

        def owned(remote_ids: Sequence[str]) -> set[str]:
            stored = self._owners(remote_ids)
            return {
                rid
                for rid in remote_ids
                if result.claims.get(rid, stored.get(rid, external_id)) != external_id
            }

        return owned

    async def _converge(
        self,
        row: PlanRow,
        payload: dict[str, Any],
        record: Mapping[str, Any],
        result: BatchResult,
        *,
        outcome: str,
    ) -> None:
        """Bring an adopted remote record in line with the source (source fields win)."""
        remote_id = self._remote_id(record)
        current = payload_from_remote(self.target, record)
        merged = three_way_merge(None, payload, current)
        if merged.merged != current:
            await self.connector.update(remote_id, merged.merged)
        self._succeed(
            result,
            row,
            remote_id,
            payload,
            result_name=outcome,
            changed=merged.changed,
            changes=merged.changes,
        )

    async def _update(
        self, row: PlanRow, remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        assert row.remote_id is not None
        source = _loads(row.payload) or {}
        record = remote.get(row.remote_id)
        if record is None:
            # Deleted at the provider outside custsync. Forget it so the next run creates it again
            # (the CRM is the source of truth); say so loudly in the outcome.
            result.deletes.append(row.external_id)
            self.record(
                result,
                row,
                "failed",
                error_code="NOT_FOUND",
                message="customer no longer exists at the provider; it will be re-created next run",
            )
            return
        current = payload_from_remote(self.target, record)
        merge = three_way_merge(_loads(row.base_payload), source, current)
        if merge.merged != current:
            await self.connector.update(row.remote_id, merge.merged)
        self._succeed(
            result,
            row,
            row.remote_id,
            source,
            changed=merge.changed,
            drift=merge.drift,
            conflicts=merge.conflicts,
            changes=merge.changes,
        )

    async def _close(
        self, row: PlanRow, _remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        assert row.remote_id is not None
        closed = await self.connector.close(row.remote_id)
        message: str = closed.outcome
        if closed.deactivated:
            message += f": {len(closed.deactivated)} instrument(s) deactivated"
        if row.action == "delete":
            # Gone from the extract: forget it. (A SumUp customer cannot be deleted, only
            # closed; should it come back, its create answers 409 and it is adopted.)
            result.deletes.append(row.external_id)
        else:
            # Closed in the extract: kept as a closed snapshot row, so that it is neither
            # re-created nor closed again while the extract still lists it as closed.
            payload = _loads(row.payload) or _loads(row.base_payload) or {}
            result.upserts.append(self._snapshot_row(row, row.remote_id, payload, status="closed"))
        # What the customer held as far as custsync knows: the last payload synced.
        last = _loads(row.base_payload) or _loads(row.payload) or {}
        self.record(
            result,
            row,
            "succeeded",
            remote_id=row.remote_id,
            message=message,
            changes=remove_changes(last),
        )

    async def _deactivate(
        self, row: PlanRow, _remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        assert row.remote_id is not None
        token = (_loads(row.payload) or {}).get("token", "")
        done = await self.connector.deactivate_instrument(row.remote_id, token)
        self.record(
            result,
            row,
            "succeeded",
            remote_id=row.remote_id,
            message="deactivated" if done else "already inactive",
        )

    async def _erase(
        self, row: PlanRow, _remote: Mapping[str, dict[str, Any]], result: BatchResult
    ) -> None:
        """``custsync forget``: erase the customer at the provider, as far as its API allows,
        and drop the key's snapshot row (the local redaction follows the recorded batch)."""
        message = "nothing held at the provider"
        if row.remote_id is not None:
            erased = await self.connector.erase(row.remote_id)
            message = erased.outcome.replace("_", " ")
            if erased.deactivated:
                message += f", {len(erased.deactivated)} instrument(s) deactivated"
            if erased.note:
                message += f" ({erased.note})"
        result.deletes.append(row.external_id)
        self.record(result, row, "succeeded", remote_id=row.remote_id, message=message)

    # -- bookkeeping -----------------------------------------------------------------------------

    def _remote_id(self, record: Mapping[str, Any]) -> str:
        key = "customer_id" if self.connector.capabilities.client_ids else "id"
        return str(record[key])

    def _snapshot_row(
        self, row: PlanRow, remote_id: str, payload: Mapping[str, Any], *, status: str
    ) -> SnapshotRow:
        hash_, key = row.content_hash, row.content_key
        if not hash_ or key is None:
            # Only then is the stored payload parsed again (a plan row carries both).
            loaded = _loads(row.payload)
            stored: Mapping[str, Any] = payload if loaded is None else loaded
            hash_ = hash_ or content_hash(stored)
            # A plan row written before the store had content keys has none: the stored
            # payload's is computed (the same for the same payload).
            key = key if key is not None else content_key(stored)
        return {
            "external_id": row.external_id,
            "remote_id": remote_id,
            "content_hash": hash_,
            "content_key": key,
            "payload": row.payload if row.payload is not None else _dumps(payload),
            "status": status,
        }

    def _succeed(
        self,
        result: BatchResult,
        row: PlanRow,
        remote_id: str | None,
        payload: Mapping[str, Any],
        *,
        result_name: str = "succeeded",
        changed: Sequence[str] = (),
        drift: Sequence[str] = (),
        conflicts: Sequence[str] = (),
        changes: Sequence[FieldChange] = (),
    ) -> None:
        if remote_id is not None:
            result.upserts.append(self._snapshot_row(row, remote_id, payload, status="active"))
            result.claim(remote_id, row.external_id)
        message = None
        if conflicts:
            message = "source and provider both changed: " + ", ".join(conflicts)
        self.record(
            result,
            row,
            result_name,
            remote_id=remote_id,
            changed=changed,
            drift=drift,
            message=message,
            changes=changes,
        )

    def fail(
        self, result: BatchResult, row: PlanRow, exc: ProviderError, *, keep_pending: bool = False
    ) -> None:
        """Record ``row`` as failed with the provider's status, error class, code and message."""
        self.record(
            result,
            row,
            "failed",
            http_status=exc.status,
            error_class=type(exc).__name__,
            error_code=exc.code,
            message=exc.message,
            keep_pending=keep_pending,
        )

    def adopt(
        self, result: BatchResult, row: PlanRow, record: Mapping[str, Any], *, message: str
    ) -> None:
        """Record that ``row``'s customer already exists remotely as ``record`` (snapshot it)."""
        remote_id = self._remote_id(record)
        payload = _loads(row.payload) or {}
        result.upserts.append(self._snapshot_row(row, remote_id, payload, status="active"))
        result.claim(remote_id, row.external_id)
        # Created by an earlier run whose outcome went unrecorded: its fields were sent then.
        self.record(
            result,
            row,
            "adopted",
            remote_id=remote_id,
            message=message,
            changes=create_changes(payload),
        )

    def record(
        self,
        result: BatchResult,
        row: PlanRow,
        outcome: str,
        *,
        remote_id: str | None = None,
        http_status: int | None = None,
        error_class: str | None = None,
        error_code: str | None = None,
        message: str | None = None,
        changed: Sequence[str] = (),
        drift: Sequence[str] = (),
        keep_pending: bool = False,
        changes: Sequence[FieldChange] = (),
    ) -> None:
        """Append the outcome of ``row`` to ``result`` (it closes the row's journal intent,
        unless ``keep_pending``), and the ``changes`` it made (a success's), at the same time."""
        at = _now()
        result.settled.add(row.plan_id)
        if changes:
            result.changes.add(
                plan_id=row.plan_id,
                external_id=row.external_id,
                remote_id=remote_id or row.remote_id,
                action=row.action,
                changes=changes,
                at=at,
            )
        result.outcomes.append(
            {
                "run_id": self.run_id,
                "target": self.target,
                "plan_id": None if keep_pending else row.plan_id,
                "external_id": row.external_id,
                "action": row.action,
                "result": outcome,
                "remote_id": remote_id or row.remote_id,
                "http_status": http_status,
                "error_class": error_class,
                "error_code": error_code,
                "message": message,
                "changed_fields": list(changed),
                "drift_fields": list(drift),
                "at": at,
            }
        )
