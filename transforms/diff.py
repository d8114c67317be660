"""Diff: mapped extract vs the target's snapshot → one plan row per key.

Keys are joined on ``external_id`` and compared by content key (a 64-bit sum of per-field
seeded XXH3 hashes, :func:`transforms.canonical.content_key`), never value by value.

============  ==============================================================  ===========
action        when                                                            modes
============  ==============================================================  ===========
create        in the extract, not in the snapshot, status active               not update-only
update        in both, hash differs (``changed``) or snapshot closed           not create-only
              (``reopened``), or its last outcome failed (``retry``)
close         status closed, the snapshot holds it active                     not create-only
delete        in the snapshot, not in the extract                             mirror only
unchanged     in both, same hash and status (or closed in both)               all
skip          a planned action the mode forbids, a closed key never synced,   all
              or a key quarantined after ``quarantine_after`` failed runs
============  ==============================================================  ===========

A key whose last outcome failed is planned again with reason ``retry`` (even if unchanged);
after ``quarantine_after`` failed runs it is skipped (``quarantined``) until its content
changes. Keys rejected by validation are never deleted: they are in the extract, only broken.
"""

from __future__ import annotations

import polars as pl

from transforms.actions import ACTING_ACTIONS, SENT_ACTIONS
from transforms.canonical import hex_digest, sha256_text
from transforms.schema import Mode

PLAN_SCHEMA = pl.Schema(
    {
        "plan_id": pl.String,
        "external_id": pl.String,
        "action": pl.String,
        "status": pl.String,
        "remote_id": pl.String,
        "payload": pl.String,
        "content_hash": pl.String,
        "base_payload": pl.String,
        "reason": pl.String,
        "content_key": pl.UInt64,
    }
)
"""Columns of :func:`plan_actions`' result, and of a stored plan row (``base_payload``: the
merge base, which the state store joins in when the plan is read)."""
PLAN_ID_LENGTH = 32


def plan_id(target: str, external_id: str, action: str, content_hash: str | None) -> str:
    """The plan row id: SHA-256 hex of ``target|external_id|action|content_hash``, 32 digits.

    The same action on the same content keeps its id across retries and runs. A delete's id
    leaves the content hash out (empty): deleting a key is the same intent whatever it held,
    and a diff on content keys alone does not know the snapshot's hash.
    """
    digest = "" if action == "delete" else content_hash or ""
    return sha256_text(f"{target}|{external_id}|{action}|{digest}")[:PLAN_ID_LENGTH]


def _keys(frame: pl.DataFrame | pl.Series | None) -> pl.Series:
    if frame is None:
        return pl.Series("external_id", [], pl.String)
    if isinstance(frame, pl.Series):
        return frame.cast(pl.String).drop_nulls()
    return frame.get_column("external_id").cast(pl.String).drop_nulls()


def _classify(mode: Mode) -> tuple[pl.Expr, pl.Expr]:
    new = pl.col("__in_m") & ~pl.col("__in_s")
    gone = ~pl.col("__in_m") & pl.col("__in_s")
    closed = pl.col("status") == "closed"
    was_closed = pl.col("__s_status") == "closed"
    changed = pl.col("content_key") != pl.col("__s_key")
    can_create = mode != "update-only"
    can_update = mode != "create-only"
    action = (
        pl.when(gone)
        .then(pl.lit("delete"))
        .when(new & closed)
        .then(pl.lit("skip"))
        .when(new)
        .then(pl.lit("create" if can_create else "skip"))
        .when(closed & was_closed)
        .then(pl.lit("unchanged"))
        .when(closed)
        .then(pl.lit("close" if can_update else "skip"))
        .when(was_closed | changed)
        .then(pl.lit("update" if can_update else "skip"))
        .otherwise(pl.lit("unchanged"))
    )
    forbidden = f"{mode} mode"
    reason = (
        pl.when(gone)
        .then(pl.lit("missing from extract"))
        .when(new & closed)
        .then(pl.lit("closed, never synced"))
        .when(new)
        .then(pl.lit("new" if can_create else forbidden))
        .when(closed & was_closed)
        .then(pl.lit("closed"))
        .when(closed)
        .then(pl.lit("status closed" if can_update else forbidden))
        .when(was_closed)
        .then(pl.lit("reopened" if can_update else forbidden))
        .when(changed)
        .then(pl.lit("changed" if can_update else forbidden))
        .otherwise(pl.lit("same content"))
    )
    return action, reason


def plan_actions(
    mapped: pl.DataFrame,
    snapshot: pl.DataFrame,
    *,
    target: str,
    mode: Mode,
    failures: pl.DataFrame | None = None,
    quarantine_after: int = 5,
    rejected: pl.DataFrame | pl.Series | None = None,
    include_unchanged: bool = True,
) -> pl.DataFrame:
    """Plan one action per key (see the module docstring for the rules).

    ``mapped`` comes from :func:`transforms.mapping.map_rows`; ``snapshot`` needs
    ``external_id``, ``content_key``, ``status`` and, optionally, ``content_hash`` (a
    delete's plan row carries it). The diff fills in nothing else from the snapshot: a row's
    ``remote_id`` is the extract's (SumUp's derived id; null for Verifone and for a delete) and
    ``base_payload`` is null; the state store fills both from its snapshot table, the remote id
    when the plan is written and the merge base when it is read (:meth:`StateStore.write_plan
    <pipelines.state.store.StateStore.write_plan>`). ``failures`` (``external_id``,
    ``action``, ``failed_runs``, optionally ``content_hash``) lists keys whose last outcome
    failed. ``rejected`` (a rejects frame or a series of keys) protects keys that are in the
    extract but failed validation from being deleted: pass the rejects in mirror mode.

    Returns :data:`PLAN_SCHEMA` columns sorted by ``external_id``. ``payload`` is null where
    nothing will be sent (delete, unchanged, skip), which keeps the frame small for millions of
    unchanged keys; ``include_unchanged=False`` leaves those keys out altogether.
    """
    snap = snapshot.lazy().select(
        "external_id",
        pl.col("content_key").alias("__s_key"),
        pl.col("status").alias("__s_status"),
        # read for quarantine too: a failed delete's hash is compared with the snapshot's
        pl.col("content_hash").alias("__s_hash")
        if "content_hash" in snapshot.columns
        else pl.lit(None, pl.String).alias("__s_hash"),
    )
    src = mapped.lazy().select(
        "external_id", "status", "remote_id", "payload", "content_hash", "content_key"
    )
    joined = (
        src.with_columns(pl.lit(True).alias("__in_m"))
        .join(
            snap.with_columns(pl.lit(True).alias("__in_s")),
            on="external_id",
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("__in_m", "__in_s").fill_null(False))
    )
    keep = pl.col("__in_m") | (
        pl.lit(mode == "mirror") & ~pl.col("external_id").is_in(_keys(rejected).implode())
    )
    action, reason = _classify(mode)
    plan = joined.filter(keep).with_columns(action.alias("action"), reason.alias("reason"))
    plan = _apply_failures(plan, failures, quarantine_after, mode)
    if not include_unchanged:
        plan = plan.filter(pl.col("action") != "unchanged")
    sends = pl.col("action").is_in(SENT_ACTIONS)
    in_extract = pl.col("__in_m")
    plan = plan.select(
        "external_id",
        "action",
        pl.when(in_extract).then(pl.col("status")).otherwise(pl.col("__s_status")).alias("status"),
        "remote_id",
        pl.when(sends).then(pl.col("payload")).alias("payload"),
        pl.when(in_extract)
        .then(pl.col("content_hash"))
        .otherwise(pl.col("__s_hash"))
        .alias("content_hash"),
        pl.lit(None, pl.String).alias("base_payload"),
        "reason",
        pl.when(in_extract)
        .then(pl.col("content_key"))
        .otherwise(pl.col("__s_key"))
        .alias("content_key"),
    ).sort("external_id")
    key = pl.concat_str(
        pl.lit(target),
        pl.col("external_id"),
        pl.col("action"),
        pl.when(pl.col("action") == "delete")
        .then(pl.lit(""))
        .otherwise(pl.col("content_hash").fill_null("")),
        separator="|",
    )
    plan_ids = hex_digest(key, "sha256").str.head(PLAN_ID_LENGTH).alias("plan_id")
    return (
        plan.with_columns(plan_ids)
        .select(pl.col(name).cast(dtype) for name, dtype in PLAN_SCHEMA.items())
        .collect()
    )


def _apply_failures(
    plan: pl.LazyFrame, failures: pl.DataFrame | None, quarantine_after: int, mode: Mode
) -> pl.LazyFrame:
    if failures is None or failures.height == 0:
        return plan
    cols = [pl.col("external_id"), pl.col("action").alias("__f_action"), pl.col("failed_runs")]
    if "content_hash" in failures.columns:
        cols.append(pl.col("content_hash").alias("__f_hash"))
    else:
        cols.append(pl.lit(None, pl.String).alias("__f_hash"))
    failed = failures.select(cols).unique("external_id", keep="last").lazy()
    plan = plan.join(failed, on="external_id", how="left")
    has_failed = pl.col("failed_runs").is_not_null()
    current_hash = pl.when(pl.col("__in_m")).then(pl.col("content_hash")).otherwise("__s_hash")
    quarantined = (pl.col("failed_runs") >= quarantine_after) & (
        pl.col("__f_hash").is_null() | (pl.col("__f_hash") == current_hash)
    )
    acting = pl.col("action").is_in(ACTING_ACTIONS)
    unchanged = pl.col("action") == "unchanged"
    retried_unchanged = (
        has_failed
        & unchanged
        & pl.col("__f_action").is_in(SENT_ACTIONS)
        & pl.col("__in_s")
        & pl.lit(mode != "create-only")
    )
    plan = plan.with_columns(
        pl.when(retried_unchanged)
        .then(
            pl.when(pl.col("status") == "closed").then(pl.lit("close")).otherwise(pl.lit("update"))
        )
        .otherwise(pl.col("action"))
        .alias("action"),
        pl.when(retried_unchanged | (has_failed & acting))
        .then(pl.lit("retry"))
        .otherwise(pl.col("reason"))
        .alias("reason"),
    )
    acting = pl.col("action").is_in(ACTING_ACTIONS)
    return plan.with_columns(
        pl.when(has_failed & quarantined & acting)
        .then(pl.lit("skip"))
        .otherwise(pl.col("action"))
        .alias("action"),
        pl.when(has_failed & quarantined & acting)
        .then(pl.format("quarantined after {} failed runs", pl.col("failed_runs")))
        .otherwise(pl.col("reason"))
        .alias("reason"),
    ).drop("__f_action", "failed_runs", "__f_hash")
