"""Extract → plan in one streaming pass: what a sync runs for millions of rows.

:func:`build_plan` gives the same plan and rejects as ``normalise`` → ``validate`` →
``map_rows`` → ``plan_actions`` (a test checks it), without materialising the extract:
33 text columns of a million rows take over 500 MB in polars before any value is counted,
and most rows of a nightly extract are unchanged. So the rows stream through normalisation,
the rule checks, mapping and hashing, are joined to the snapshot on the way, and only what
the plan needs is kept: changed keys with their payloads, rejected rows' positions, and
snapshot keys the extract no longer has. Rejects are itemised afterwards from those rows.

The pass computes content keys (one seeded XXH3 per field, summed: no text, no JSON) and
compares them with the snapshot's: the JSON payload and the SHA-256 content hash are
built afterwards, for the changed rows only (about 1 in 15 on a nightly run).

Inside the pass, keys are compared through two independent 64-bit polars hashes (128 bits),
computed in this process for both sides: a join table of ten million snapshot keys then takes
about 250 MB instead of over a gigabyte. These hashes never leave the function.

"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms.diff import plan_actions
from transforms.mapping import Constants, mapped_frame
from transforms.normalise import normalise
from transforms.schema import Mode
from transforms.validate import REJECTS_SCHEMA, row_is_broken, validate

_ROW = "__source_row"
_KEYS = ["__k1", "__k2"]
CHUNK_ROWS = 50_000
"""Changed rows whose payloads are built at once (a nightly run's are fewer)."""


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


def _reread(frame: pl.LazyFrame, rows: pl.Series) -> pl.LazyFrame:
    """The extract's rows at positions ``rows``, normalised, read again (materialised)."""
    return (
        normalise(frame.with_row_index(_ROW, offset=1).filter(pl.col(_ROW).is_in(rows.implode())))
        .collect(engine="streaming")
        .lazy()
    )


def _payloads(
    frame: pl.LazyFrame, changed: pl.DataFrame, target: str, constants: Constants | None
) -> pl.DataFrame:
    """The mapped rows (payload, content hash) of the ``changed`` rows (position, content key)."""
    return mapped_frame(
        _reread(frame, changed.get_column(_ROW)).join(changed.lazy(), on=_ROW),
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
    """
    rows = normalise(frame.with_row_index(_ROW, offset=1))
    key = pl.col("external_id")
    total, repeated = _repeated_keys(rows)
    bad = key.is_null() | key.is_in(repeated.implode()) | row_is_broken(target)
    if forgotten is not None and forgotten.len():
        bad = bad | key.is_in(forgotten.implode())
    known = snapshot.lazy().select(
        *_key_hashes(key),
        pl.col("content_key").alias("__s_key"),
        (pl.col("status") == "closed").alias("__s_closed"),
        pl.lit(True).alias("__in_s"),
    )
    in_m, is_bad = pl.col("__in_m").fill_null(False), pl.col("__bad").fill_null(False)
    needed = (
        pl.col("__s_key").is_null()
        | (pl.col("__s_key") != pl.col("content_key"))
        | (pl.col("__s_closed") != (pl.col("status") == "closed"))
    )
    if failures is not None and failures.height:
        needed = needed | key.is_in(failures.get_column("external_id").implode())
    # Keep only what can matter: changed keys and rejected rows (by position: they are read
    # again below) and, in mirror mode, snapshot keys absent from the extract. A key on a
    # rejected row is present, so it is never taken for absent and deleted.
    keep = (in_m & ~is_bad & needed) | (in_m & is_bad)
    if mode == "mirror":
        keep = keep | ~in_m
    stream = rows.with_columns(bad.alias("__bad"), pl.lit(True).alias("__in_m"))
    carry: list[str | pl.Expr] = ["__bad", "__in_m", _ROW]
    hashed = mapped_frame(
        stream, target, constants=constants, carry=carry, payload=False, hashed=False
    )
    out = (
        hashed.with_columns(_key_hashes(key))
        .join(known, on=_KEYS, how="full", coalesce=True, build_side="force_right")
        .filter(keep)
        .select(*_KEYS, is_bad, in_m, _ROW, "content_key")
        .collect(engine="streaming")
    )
    # The kept rows of the extract, read again: carrying every column through the join for
    # all rows, to use them for a few, took more memory than the second read takes time.
    bad_rows = out.filter(pl.col("__bad")).get_column(_ROW)
    rejects = (
        validate(_reread(frame, bad_rows), target, row_index=_ROW, forgotten=forgotten).rejects
        if bad_rows.len()
        else pl.DataFrame(schema=REJECTS_SCHEMA)
    )
    # Their content keys come from the pass: the JSON and the SHA-256 are built here, a slice
    # of rows at a time: a migration changes every row, and building all of them at once took
    # about 2 KB a row at its peak (issue 14).
    changed = out.filter(pl.col("__in_m") & ~pl.col("__bad")).select(_ROW, "content_key")
    parts = [_payloads(frame, part, target, constants) for part in changed.iter_slices(CHUNK_ROWS)]
    candidates = pl.concat(parts) if parts else _payloads(frame, changed, target, constants)
    vanished = out.filter(~pl.col("__in_m")).select(_KEYS)
    involved = pl.concat(
        [
            snapshot.filter(key.is_in(candidates.get_column("external_id").implode())),
            snapshot.with_columns(_key_hashes(key))
            .join(vanished, on=_KEYS, how="semi")
            .drop(_KEYS),
        ]
    )
    plan = plan_actions(
        candidates,
        involved,
        target=target,
        mode=mode,
        failures=failures,
        quarantine_after=quarantine_after,
        rejected=rejects,
        include_unchanged=False,
    )
    valid = total - bad_rows.len()
    acted = plan.filter(key.is_in(candidates.get_column("external_id").implode())).height
    return PlanResult(
        plan=plan, rejects=rejects, extract_rows=total, valid_rows=valid, unchanged=valid - acted
    )
