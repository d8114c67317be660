"""Planned creates that a look-up at the provider could not tell apart ("twins").

A Verifone create whose outcome is unknown is settled by searching for a customer equal to what
was sent. Two creates with the same payload (a CRM holding one customer under two keys) find
each other's customer: content alone cannot say whose it is. They are found here, at planning
time, so that the executor sends them one at a time, each confirmed before the next
(docs/connectors.md, "Twins").

A migration's adoption look-up has the same blind spot one level up: two keys finding the
one remote customer (say by the same e-mail) would both adopt it. That is decided with the
look-ups' results, when planning (:func:`pipelines.adopting.decide`): both are ambiguous.

Pure polars, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from connectors.providers.registry import describe


@dataclass(frozen=True)
class Twins:
    """The twin groups of one plan (only the keys that have a twin)."""

    group_of: Mapping[str, str] = field(default_factory=dict)
    """external_id -> its twin group's label (the group's lowest external_id); keys of planned
    creates whose payload equals another planned create's."""

    def __len__(self) -> int:
        return len(self.group_of)

    def group(self, external_id: str) -> str | None:
        """The twin group of a planned create, or ``None`` when it has no twin."""
        return self.group_of.get(external_id)


def find_twins(plan: pl.DataFrame, *, target: str) -> Twins:
    """Twin groups among ``plan``'s creates (server-assigned ids only).

    ``plan`` has :data:`transforms.diff.PLAN_SCHEMA`'s ``external_id``, ``action``,
    ``payload`` and ``content_key`` columns. Content twins have equal content keys (over every
    field sent): a 64-bit collision could only put two creates in one group, which costs
    serialising them, never a wrong adoption. Ids a client chooses from the key (SumUp) leave
    creates no twins.
    """
    creates = plan.filter(pl.col("action") == "create").select(
        "external_id", "payload", "content_key"
    )
    if creates.height < 2:
        return Twins()
    group_of: dict[str, str] = {}
    if describe(target).client_id is None:
        # A plan row without a content key (written by an older version) is grouped by payload.
        key = pl.coalesce(pl.col("content_key").cast(pl.String), pl.col("payload"))
        grouped = (
            creates.with_columns(key.alias("__twin"))
            .filter(pl.col("__twin").is_not_null() & pl.col("__twin").is_duplicated())
            .with_columns(pl.col("external_id").min().over("__twin").alias("__group"))
        )
        group_of = dict(zip(grouped["external_id"], grouped["__group"], strict=True))
    return Twins(group_of=group_of)
