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


def _repeated_keys(keys: pl.LazyFrame) -> pl.LazyFrame:
    """Keys on more than one row. Counted by a 64-bit hash first (8 bytes a key, not the
    key's text: a tenth of the memory for ten million keys), then confirmed on the text of
    the few keys whose hash repeats, so a hash collision cannot reject a valid row."""
    key = pl.col("external_id")
    hashed = keys.filter(key.is_not_null()).with_columns(key.hash().alias("__h"))
    suspects = hashed.group_by("__h").len().filter(pl.col("len") > 1).select("__h")
    return (
        hashed.join(suspects, on="__h", how="semi")
        .group_by("external_id")
        .len()
        .filter(pl.col("len") > 1)
        .select("external_id")
    )


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
    key = pl.col("external_id")
    extract_rows, repeated = pl.collect_all(
        [rows.select(pl.len()), _repeated_keys(rows.select("external_id"))], engine="streaming"
    )
    bad = key.is_null() | key.is_in(repeated.get_column("external_id").implode())
    bad = bad | row_is_broken(target)
    known = snapshot.lazy().select(
        "external_id",
        pl.col("content_hash").alias("__s_hash"),
        pl.col("status").alias("__s_status"),
        pl.lit(True).alias("__in_s"),
    )
    in_m, is_bad = pl.col("__in_m").fill_null(False), pl.col("__bad").fill_null(False)
    needed = (
        pl.col("__s_hash").is_null()
        | (pl.col("__s_hash") != pl.col("content_hash"))
        | (pl.col("__s_status") != pl.col("status"))
    )
    if failures is not None and failures.height:
        needed = needed | key.is_in(failures.get_column("external_id").implode())
    # One pass keeps only what can matter: changed keys with their payload, rejected rows (by
    # position, itemised below), and (mirror) snapshot keys absent from the extract. A key on
    # a rejected row is present, so it is never taken for absent and deleted. Unchanged keys
    # are only counted: a nightly extract is mostly them.
    keep = (in_m & ~is_bad & needed) | (in_m & is_bad)
    if mode == "mirror":
        keep = keep | ~in_m
    out = (
        mapped_frame(
            rows.with_columns(bad.alias("__bad"), pl.lit(True).alias("__in_m")),
            target,
            entity_id=entity_id,
            carry=("__bad", "__in_m", _ROW),
        )
        .join(known, on="external_id", how="full", coalesce=True)
        .filter(keep)
        .select("external_id", "status", "remote_id", "payload", "content_hash", is_bad, in_m, _ROW)
        .collect(engine="streaming")
    )
    bad_rows = out.filter(pl.col("__bad")).get_column(_ROW)
    rejects = (
        validate(
            rows.filter(pl.col(_ROW).is_in(bad_rows.implode())), target, row_index=_ROW
        ).rejects
        if bad_rows.len()
        else pl.DataFrame(schema=REJECTS_SCHEMA)
    )
    candidates = out.filter(pl.col("__in_m") & ~pl.col("__bad")).drop("__bad", "__in_m", _ROW)
    involved = pl.concat(
        [candidates.get_column("external_id"), out.filter(~pl.col("__in_m"))["external_id"]]
    )
    plan = plan_actions(
        candidates,
        snapshot.filter(key.is_in(involved.implode())),
        target=target,
        mode=mode,
        failures=failures,
        quarantine_after=quarantine_after,
        rejected=rejects,
        include_unchanged=False,
    )
    total = extract_rows.item()
    valid = total - bad_rows.len()
    acted = plan.filter(key.is_in(candidates.get_column("external_id").implode())).height
    return PlanResult(
        plan=plan,
        rejects=rejects,
        extract_rows=total,
        valid_rows=valid,
        unchanged=valid - acted,
    )
