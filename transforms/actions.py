"""The actions a plan row can hold: one list, from which every narrower set is derived.

The diff plans all of them but ``deactivate`` (an instruments extract plans those, see
:mod:`pipelines.instruments`); the run summary counts all of them but ``skip`` (a skipped row
is planned and recorded, but neither sent nor failed), in the order of :data:`ACTIONS`.
"""

from __future__ import annotations

from typing import Literal, get_args

Action = Literal["create", "update", "delete", "close", "deactivate", "unchanged", "skip"]
"""What a plan row asks for (the rules: :mod:`transforms.diff`). ``deactivate`` is one payment
instrument; ``skip`` is planned but not sent (the mode forbids it, or the key is quarantined)."""

ACTIONS: tuple[Action, ...] = get_args(Action)
"""Every action, in the order the run summary lists them."""

DIFF_ACTIONS: tuple[Action, ...] = tuple(a for a in ACTIONS if a != "deactivate")
"""The actions :func:`transforms.diff.plan_actions` plans."""

SUMMARY_ACTIONS: tuple[Action, ...] = tuple(a for a in ACTIONS if a != "skip")
"""The actions a run summary counts (planned / succeeded / failed), in its order."""

SENT_ACTIONS: tuple[Action, ...] = ("create", "update", "close")
"""Diff actions that send the source payload."""

MERGED_ACTIONS: tuple[Action, ...] = ("update", "close")
"""Actions that merge with a base: the key's snapshot payload (get-merge-post)."""

BASED_ACTIONS: tuple[Action, ...] = (*MERGED_ACTIONS, "delete")
"""Actions whose plan row carries the key's last synced payload as ``base_payload``: the merge
base, and what a delete leaves behind (recorded as its changes)."""

ACTING_ACTIONS: tuple[Action, ...] = (*SENT_ACTIONS, "delete")
"""Diff actions that change the provider: a failure retries them, quarantine skips them."""
