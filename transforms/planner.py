"""Extract → plan in one streaming pass, then a slice at a time: what a sync runs for millions.

:func:`build_plan` gives the same plan and rejects as ``normalise`` → ``validate`` →
``map_rows`` → ``plan_actions`` (a test checks it), without materialising the extract:
33 text columns of a million rows take over 500 MB in polars before any value is counted,
and most rows of a nightly extract are unchanged. So the rows stream through normalisation,
the rule checks, mapping and hashing, are joined to the snapshot on the way, and only what
the plan needs is kept, about 25 bytes a row: changed keys' positions and content keys,
rejected rows' positions, and snapshot rows the extract no longer has.

The pass computes content keys (one seeded XXH3 per field, summed: no text, no JSON) and
compares them with the snapshot's: the JSON payload, the SHA-256 content hash and the plan
rows are built afterwards, :data:`CHUNK_ROWS` rows at a time, and handed to the caller's
sink one part at a time (the state store writes each): a migration's plan is never held
whole (issue 14: building and writing all of it at once took about 2 KB a customer).

Everything that looks across rows is decided on the whole extract, never within a part:
repeated keys in the pass (a hash of every key), rejects in slices *of keys* (a repeated
key's rows are in one slice, whatever their positions), twins by the state store over the
stored plan. Parts of changed rows are cut by position (each row's payload and action
depend on that row and its key's snapshot row alone), so a part is read again from a
contiguous stretch of the extract: a Parquet scan skips the rest.

Inside the pass, keys are compared through two independent 64-bit polars hashes (128 bits),
computed in this process for both sides: a join table of ten million snapshot keys then takes
about 250 MB instead of over a gigabyte. These hashes never leave the function.

"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from transforms.diff import PLAN_SCHEMA, plan_actions
from transforms.mapping import MAPPED_SCHEMA, Constants, mapped_frame
from transforms.normalise import normalise
from transforms.schema import Mode
from transforms.validate import REJECTS_SCHEMA, row_is_broken, validate

_ROW = "__source_row"
_SNAP_ROW = "__snapshot_row"
_KEYS = ["__k1", "__k2"]
CHUNK_ROWS = 20_000
"""Rows of the plan (payloads, hashes, plan ids) built and handed to the sink at once; rows
of rejected keys validated at once (more only when one key has more rows)."""

Sink = Callable[[pl.DataFrame], object]
"""Receives one part of the plan (:data:`~transforms.diff.PLAN_SCHEMA`) or of the rejects
(:data:`~transforms.validate.REJECTS_SCHEMA`) at a time."""


@dataclass(frozen=True)
class PlanResult:
    """What :func:`build_plan` produced."""

    plan: pl.DataFrame
    """:data:`~transforms.diff.PLAN_SCHEMA` rows of every key with something to do (unchanged
    keys are only counted: a nightly run has millions of them), by ``external_id``. Empty
    when the parts went to a sink."""
    rejects: pl.DataFrame
    """:data:`~transforms.validate.REJECTS_SCHEMA` rows (empty when they went to a sink)."""
    extract_rows: int
    """Rows read from the extract."""
    valid_rows: int
    """Rows that passed validation."""
    unchanged: int
    """Valid keys with nothing to do."""
    actions: dict[str, int] = field(default_factory=dict)
    """Planned rows per action (those a sink received included)."""
    rejected: int = 0
    """Reject rows (those a sink received included)."""

    def counts(self) -> dict[str, int]:
        """Planned rows per action, ``unchanged`` included."""
        return {**self.actions, "unchanged": self.unchanged}


def _reread(frame: pl.LazyFrame, rows: pl.Series) -> pl.LazyFrame:
    """The extract's rows at positions ``rows``, normalised, read again (materialised).

    Only the stretch from the first to the last position is scanned (a Parquet scan skips
    the row groups around it): parts of neighbouring rows are read in one pass over the file.
    """
    first, last = int(rows.min()), int(rows.max())  # type: ignore[arg-type]
    stretch = frame.slice(first - 1, last - first + 1).with_row_index(_ROW, offset=first)
    return (
        normalise(stretch.filter(pl.col(_ROW).is_in(rows.implode())))
        .collect(engine="streaming")
        .lazy()
    )


def _payloads(
    rows: pl.LazyFrame, changed: pl.DataFrame, target: str, constants: Constants | None
) -> pl.DataFrame:
    """The mapped rows (payload, content hash) of the ``changed`` rows (position, content key)
    among ``rows`` (normalised, with their positions)."""
    return mapped_frame(
        rows.join(changed.select(_ROW, "content_key").lazy(), on=_ROW),
        target,
        constants=constants,
        carry=["content_key"],
        keyed=False,
    ).collect()  # a few rows, many columns: the in-memory engine spreads the columns over cores


def _key_hashes(key: pl.Expr) -> list[pl.Expr]:
    return [key.hash(seed=1).alias("__k1"), key.hash(seed=2).alias("__k2")]


def _repeated_keys(rows: pl.LazyFrame) -> tuple[int, pl.Series]:
    """Row count, and keys on more than one row.

    Counted on one 64-bit hash first (8 bytes a row), then confirmed on the text of the few
    keys whose hash repeats, so a collision cannot reject a valid row.
    """
    key = pl.col("external_id")
    hashes = rows.select(key.hash(seed=1).alias("h")).collect(engine="streaming").get_column("h")
    none = pl.Series("external_id", [], pl.String)
    if hashes.n_unique() == hashes.len():  # the usual case, counted at a third of the cost
        return hashes.len(), none
    suspects = hashes.filter(hashes.is_duplicated()).unique()
    if suspects.len() == 0:
        return hashes.len(), none
    repeated = (
        rows.select("external_id")
        .filter(key.is_not_null() & key.hash(seed=1).is_in(suspects.implode()))
        .group_by("external_id")
        .len()
        .filter(pl.col("len") > 1)
        .collect(engine="streaming")
    )
    return hashes.len(), repeated.get_column("external_id")


class _Parts:
    """Where the parts go: the caller's sinks, or lists joined at the end."""

    def __init__(self, on_plan: Sink | None, on_rejects: Sink | None) -> None:
        self._on_plan, self._on_rejects = on_plan, on_rejects
        self.plans: list[pl.DataFrame] = []
        self.rejects: list[pl.DataFrame] = []
        self.actions: dict[str, int] = {}
        self.rejected = 0

    def plan(self, part: pl.DataFrame) -> int:
        for action, n in part.group_by("action").len().iter_rows():
            self.actions[action] = self.actions.get(action, 0) + n
        if self._on_plan is not None:
            if part.height:
                self._on_plan(part)
        else:
            self.plans.append(part)
        return part.height

    def reject(self, part: pl.DataFrame) -> None:
        self.rejected += part.height
        if self._on_rejects is not None:
            if part.height:
                self._on_rejects(part)
        else:
            self.rejects.append(part)

    def whole_plan(self) -> pl.DataFrame:
        if not self.plans:
            return pl.DataFrame(schema=PLAN_SCHEMA)
        return pl.concat(self.plans).sort("external_id")

    def whole_rejects(self) -> pl.DataFrame:
        if not self.rejects:
            return pl.DataFrame(schema=REJECTS_SCHEMA)
        return pl.concat(self.rejects).sort("source_row", "field", "rule")


def build_plan(
    frame: pl.LazyFrame,
    snapshot: pl.DataFrame,
    *,
    target: str,
    mode: Mode,
    constants: Constants | None = None,
    failures: pl.DataFrame | None = None,
    quarantine_after: int = 5,
    forgotten: pl.Series | None = None,
    on_plan: Sink | None = None,
    on_rejects: Sink | None = None,
) -> PlanResult:
    """Normalise, validate, map, hash and diff an extract against ``snapshot``.

    ``frame`` is :attr:`pipelines.extract.ExtractResult.frame` (canonical, not yet
    normalised). ``snapshot`` needs ``external_id``, ``content_key`` and ``status``
    (``content_hash`` is optional, as for :func:`~transforms.diff.plan_actions`). The plan's
    remote ids and merge bases come from the state store, which fills them from its snapshot
    table (:meth:`StateStore.write_plan <pipelines.state.store.StateStore.write_plan>`): execute
    from the stored plan. Rejected keys are protected from deletion. ``constants`` holds the
    target's constant body values (:func:`transforms.mapping.map_rows`); the other arguments
    are those of :func:`~transforms.diff.plan_actions`. ``forgotten``: keys erased on request,
    rejected with rule ``forgotten`` (:func:`~transforms.validate.forgotten_rule`).

    ``on_plan`` / ``on_rejects``: given, they receive the plan / the rejects a part of at most
    about :data:`CHUNK_ROWS` rows at a time, in no particular order, and the result holds
    only counts; the parts together are exactly what the result holds without them.
    """
    parts = _Parts(on_plan, on_rejects)
    key = pl.col("external_id")
    total, repeated = _repeated_keys(normalise(frame))
    bad = key.is_null() | key.is_in(repeated.implode()) | row_is_broken(target)
    if forgotten is not None and forgotten.len():
        bad = bad | key.is_in(forgotten.implode())
    known = (
        snapshot.lazy()
        .with_row_index(_SNAP_ROW)
        .select(
            *_key_hashes(key),
            pl.col("content_key").alias("__s_key"),
            (pl.col("status") == "closed").alias("__s_closed"),
            _SNAP_ROW,
        )
    )
    needed = (
        pl.col("__s_key").is_null()
        | (pl.col("__s_key") != pl.col("content_key"))
        | (pl.col("__s_closed") != (pl.col("status") == "closed"))
    )
    if failures is not None and failures.height:
        needed = needed | key.is_in(failures.get_column("external_id").implode())

    def diff(mapped: pl.DataFrame, involved: pl.DataFrame) -> pl.DataFrame:
        return plan_actions(
            mapped,
            involved,
            target=target,
            mode=mode,
            failures=failures,
            quarantine_after=quarantine_after,
            include_unchanged=False,
        )

    # The extract a slice of positions at a time: reading it in one streaming pass held a
    # whole Parquet row group's normalised text at once (~360 bytes a row at 400,000 rows).
    # A slice's changed rows are planned and handed on at once; its rejected rows' positions
    # and the snapshot rows it matched are all that is kept of it.
    seen = pl.zeros(snapshot.height, pl.Boolean, eager=True)
    rejected: list[pl.DataFrame] = []
    acted = 0
    for start in range(0, total, CHUNK_ROWS):
        rows = normalise(frame.slice(start, CHUNK_ROWS).with_row_index(_ROW, offset=start + 1))
        rows = rows.collect().lazy()
        checked = (
            mapped_frame(
                rows.with_columns(bad.alias("__bad")),
                target,
                constants=constants,
                carry=["__bad", _ROW],
                payload=False,
                hashed=False,
            )
            .with_columns(_key_hashes(key))
            .join(known, on=_KEYS, how="left")
            .select(_ROW, "__k1", "__bad", "content_key", _SNAP_ROW, needed.alias("__needed"))
            .collect()
        )
        seen.scatter(checked.get_column(_SNAP_ROW).drop_nulls(), True)
        rejected.append(checked.filter(pl.col("__bad")).select(_ROW, "__k1"))
        changed = checked.filter(~pl.col("__bad") & pl.col("__needed"))
        if changed.height:
            candidates = _payloads(rows, changed, target, constants)
            involved = snapshot[changed.get_column(_SNAP_ROW).drop_nulls()]
            acted += parts.plan(diff(candidates, involved))
    rejected_rows = _reject(frame, pl.concat(rejected), target, forgotten, parts) if rejected else 0
    if mode == "mirror":
        # Snapshot keys the extract does not have: deletes, a part at a time. None of them is
        # a rejected key (a rejected row's key is in the extract: its snapshot row was seen).
        vanished = seen.not_().arg_true()
        for gone in vanished.to_frame().iter_slices(CHUNK_ROWS):
            parts.plan(diff(pl.DataFrame(schema=MAPPED_SCHEMA), snapshot[gone.to_series()]))
    valid = total - rejected_rows
    return PlanResult(
        plan=parts.whole_plan(),
        rejects=parts.whole_rejects(),
        extract_rows=total,
        valid_rows=valid,
        unchanged=valid - acted,
        actions=parts.actions,
        rejected=parts.rejected,
    )


def _reject(
    frame: pl.LazyFrame,
    bad: pl.DataFrame,
    target: str,
    forgotten: pl.Series | None,
    parts: _Parts,
) -> int:
    """Itemise the rejected rows ``bad`` (position, key hash) into ``parts``, in slices of
    keys; their count.

    A key's rows are validated together (a repeated key is one reject per row, a broken
    field one per key): the slice is chosen by the key's hash, never by the row's position.
    """
    if bad.height == 0:
        return 0
    slices = math.ceil(bad.height / CHUNK_ROWS)
    for i in range(slices):
        rows = bad.filter(pl.col("__k1") % slices == i).get_column(_ROW)
        if rows.len():
            checked = validate(_reread(frame, rows), target, row_index=_ROW, forgotten=forgotten)
            parts.reject(checked.rejects)
    return bad.height
