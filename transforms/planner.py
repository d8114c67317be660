"""Extract → plan in one streaming pass: what a sync runs for millions of rows.

:func:`build_plan` gives the same plan and rejects as ``normalise`` → ``validate`` →
``map_rows`` → ``plan_actions`` (a test checks it), without materialising the extract:
33 text columns of a million rows take over 500 MB in polars before any value is counted,
and most rows of a nightly extract are unchanged. So the rows stream through normalisation,
the rule checks, mapping and hashing, are joined to the snapshot's hashes on the way, and
only what the plan needs is kept: every key and hash, and payloads for keys that changed.
Rejected rows are found in the same pass and itemised afterwards from those rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms.diff import plan_actions
from transforms.mapping import mapped_frame
from transforms.normalise import normalise
from transforms.schema import Mode, Target
from transforms.validate import REJECTS_SCHEMA, row_is_broken, validate

_ROW = "__source_row"


@dataclass(frozen=True)
class PlanResult:
    """What :func:`build_plan` produced."""

    plan: pl.DataFrame
    """:data:`~transforms.diff.PLAN_SCHEMA` rows of every key with something to do (unchanged
    keys are only counted: a nightly run has millions of them)."""
    rejects: pl.DataFrame
    """:data:`~transforms.validate.REJECTS_SCHEMA` rows."""
    extract_rows: int
    """Rows read from the extract."""
    valid_rows: int
    """Rows that passed validation."""
    unchanged: int
    """Valid keys with nothing to do."""

    def counts(self) -> dict[str, int]:
        """Planned rows per action, ``unchanged`` included."""
        counts = dict(self.plan.group_by("action").len().iter_rows())
        counts["unchanged"] = self.unchanged
        return counts


def build_plan(
    frame: pl.LazyFrame,
    snapshot: pl.DataFrame,
    *,
    target: Target,
    mode: Mode,
    entity_id: str | None = None,
    failures: pl.DataFrame | None = None,
    quarantine_after: int = 5,
) -> PlanResult:
    """Normalise, validate, map, hash and diff an extract against ``snapshot``.

    ``frame`` is :attr:`pipelines.extract.ExtractResult.frame` (canonical, not yet
    normalised). ``snapshot`` needs ``external_id``, ``remote_id``, ``content_hash`` and
    ``status``; with a ``payload`` column, ``base_payload`` is filled for updates and closes
    (otherwise :meth:`StateStore.write_plan <pipelines.state.store.StateStore.write_plan>`
    fills it from the snapshot table). Rejected keys are protected from deletion. The other
    arguments are those of :func:`~transforms.diff.plan_actions`.
    """
    rows = normalise(frame.with_row_index(_ROW, offset=1))
    keys = rows.select("external_id").collect(engine="streaming")
    repeated = (
        keys.filter(pl.col("external_id").is_not_null())
        .group_by("external_id")
        .len()
        .filter(pl.col("len") > 1)
        .get_column("external_id")
    )
    key = pl.col("external_id")
    bad = key.is_null() | key.is_in(repeated.implode()) | row_is_broken(target)
    known = snapshot.lazy().select(
        "external_id",
        pl.col("content_hash").alias("__s_hash"),
        pl.col("status").alias("__s_status"),
    )
    retried = failures.get_column("external_id") if failures is not None else None
    needed = (
        pl.col("__s_hash").is_null()
        | (pl.col("__s_hash") != pl.col("content_hash"))
        | (pl.col("__s_status") != pl.col("status"))
    )
    if retried is not None and retried.len():
        needed = needed | key.is_in(retried.implode())
    out = (
        mapped_frame(
            rows.with_columns(bad.alias("__bad")),
            target,
            entity_id=entity_id,
            carry=("__bad", _ROW),
        )
        .join(known, on="external_id", how="left")
        # Unchanged keys keep their hash and drop their payload: it would never be sent.
        .with_columns(pl.when(needed & ~pl.col("__bad")).then(pl.col("payload")).alias("payload"))
        .with_columns(pl.when(pl.col("__bad")).then(pl.col(_ROW)).alias(_ROW))
        .drop("__s_hash", "__s_status")
        .collect(engine="streaming")
    )
    mapped = out.filter(~pl.col("__bad")).drop("__bad", _ROW)
    bad_rows = out.get_column(_ROW).drop_nulls()
    rejects = (
        validate(
            rows.filter(pl.col(_ROW).is_in(bad_rows.implode())), target, row_index=_ROW
        ).rejects
        if bad_rows.len()
        else pl.DataFrame(schema=REJECTS_SCHEMA)
    )
    # Only keys that may need an action go through the full diff: those with a payload kept
    # above, and (mirror) snapshot keys absent from the extract. A key present in the
    # extract, even on a rejected row, is not absent: rejected keys are never deleted.
    candidates = mapped.filter(pl.col("payload").is_not_null())
    relevant = snapshot.filter(key.is_in(candidates.get_column("external_id").implode()))
    if mode == "mirror":
        present = keys.filter(key.is_not_null()).unique()
        relevant = pl.concat([relevant, snapshot.join(present, on="external_id", how="anti")])
    plan = plan_actions(
        candidates,
        relevant,
        target=target,
        mode=mode,
        failures=failures,
        quarantine_after=quarantine_after,
        rejected=rejects,
        include_unchanged=False,
    )
    acted = plan.filter(key.is_in(candidates.get_column("external_id").implode())).height
    return PlanResult(
        plan=plan,
        rejects=rejects,
        extract_rows=keys.height,
        valid_rows=mapped.height,
        unchanged=mapped.height - acted,
    )
