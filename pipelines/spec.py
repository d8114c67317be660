"""What a run is asked to do: :class:`RunSpec`, the one parameter object.

Each field is declared once, with its default and its help text; the CLI options
(:mod:`pipelines.commands.options`) are built from these fields, and the flows' parameters
(:mod:`pipelines.flows.sync`, :mod:`pipelines.flows.migrate`) are these fields with these
defaults (a test holds the flow signatures equal to :func:`parameters`). Defaults that are
settings (rate, concurrency, batch size, delete limit) are ``None`` here: the setting's own
default applies (:class:`~pipelines.settings.Settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from transforms.schema import Mode

SYNC = "sync"
MIGRATE = "migrate"
FLOWS = (SYNC, MIGRATE)
"""The flows a :class:`RunSpec` describes a run of, with parameters of its fields."""
APPLY = "apply"
"""A run executing a dry run's stored plan (``custsync apply``): its spec is the dry run's."""


@dataclass(frozen=True)
class Param:
    """How a :class:`RunSpec` field is offered as a flow parameter and a CLI option."""

    help: str
    flows: tuple[str, ...] = FLOWS
    """The flows that take it as a parameter."""
    flag: str | None = None
    """The CLI option's name when it is not ``--<field-name>``; ``""``: not an option (an
    argument, or a parameter only flows take)."""
    choices: str | None = None
    """``targets`` (the registered providers) or ``modes``."""
    minimum: float | None = None
    maximum: float | None = None
    path: str | None = None
    """``file`` (a file that may not exist yet) or ``existing`` (a file that must exist)."""
    setting: str | None = None
    """The :class:`~pipelines.settings.Settings` field that applies when this is unset."""


def _about(meta: Param) -> dict[str, Param]:
    return {"param": meta}


@dataclass(frozen=True)
class RunSpec:
    """What the caller asked for (flow parameters: JSON-able, no secrets)."""

    flow: str
    extract: tuple[str, ...] = field(
        metadata=_about(Param("CSV/Parquet files or globs in the canonical format.", flag=""))
    )
    target: str = field(
        metadata=_about(Param("The provider to sync to.", flag="--target", choices="targets"))
    )
    mode: Mode = field(
        default="upsert",
        metadata=_about(
            Param(
                "mirror (also delete customers that left the extract), upsert (no deletes), "
                "update-only or create-only.",
                choices="modes",
            )
        ),
    )
    dry_run: bool = field(
        default=False, metadata=_about(Param("Plan and store the plan; send nothing."))
    )
    instruments: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            Param(
                "external_id,token extract(s) of payment instruments to deactivate. Repeatable.",
                flows=(SYNC,),
            )
        ),
    )
    mapping: str | None = field(
        default=None,
        metadata=_about(
            Param("TOML file renaming your CRM's columns to the canonical ones.", path="existing")
        ),
    )
    allow_deletes: bool = field(
        default=False,
        metadata=_about(
            Param("Let a mirror run delete more than max_delete_fraction of the snapshot.", (SYNC,))
        ),
    )
    allow_empty: bool = field(
        default=False,
        metadata=_about(Param("Let an extract with no valid rows through.", flows=(SYNC,))),
    )
    max_delete_fraction: float | None = field(
        default=None,
        metadata=_about(
            Param(
                "Largest fraction of the snapshot a mirror run may delete.",
                flows=(SYNC,),
                minimum=0,
                maximum=1,
                setting="max_delete_fraction",
            )
        ),
    )
    max_reject_fraction: float | None = field(
        default=None,
        metadata=_about(
            Param(
                "Largest fraction of the extract's rows that may be rejected before the run "
                "refuses to send anything.",
                minimum=0,
                maximum=1,
                setting="max_reject_fraction",
            )
        ),
    )
    rate_limit: float | None = field(
        default=None,
        metadata=_about(Param("Requests/s (0 = unlimited).", flag="--rate", setting="rate_limit")),
    )
    concurrency: int | None = field(
        default=None,
        metadata=_about(
            Param("Calls in flight at most.", minimum=1, maximum=256, setting="concurrency")
        ),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_about(
            Param("Actions per batch, one transaction each.", minimum=1, setting="batch_size")
        ),
    )
    state: str | None = field(
        default=None,
        metadata=_about(
            Param(
                "The DuckDB state file.",
                path="file",
                setting="state",
            )
        ),
    )
    landing: bool = field(
        default=False,
        metadata=_about(
            Param(
                "Read EXTRACT as a landing folder: the newest complete night of new files only "
                "(none still being written, none synced before), then move the files to "
                "processed/.",
                flows=(SYNC,),
            )
        ),
    )
    processed: str | None = field(
        default=None,
        metadata=_about(
            Param(
                "Folder a landing-folder run moves its files to (default: processed/ beside "
                "the landing folder). Nothing there is ever overwritten or deleted.",
                flows=(SYNC,),
            )
        ),
    )
    adopt_by: tuple[str, ...] = ()
    """Migration: payload fields to adopt an existing remote customer by before creating
    (the target's adoption keys; not a parameter)."""
    plan_run: str | None = None
    """An apply: the dry run whose stored plan this run executes, unchanged (not a parameter;
    :mod:`pipelines.apply`)."""

    @property
    def calls_provider(self) -> bool:
        """Whether the run talks to the provider: a real run, or a migration's dry run (its
        adoption look-ups are reads, :mod:`pipelines.adopting`)."""
        return not self.dry_run or self.flow == MIGRATE

    @classmethod
    def from_parameters(cls, flow: str, params: Mapping[str, Any]) -> RunSpec:
        """The spec of a ``flow`` run from its parameters (lists become tuples, ``None``
        sequences empty); a migration adopts by the target's adoption keys."""
        values: dict[str, Any] = {}
        for name, spec_field in _fields(flow).items():
            value = params.get(name, spec_field.default)
            if spec_field.type.startswith("tuple"):
                value = tuple(value or ())
            values[name] = value
        adopt_by: tuple[str, ...] = ()
        if flow == MIGRATE:
            from connectors.providers.registry import describe

            try:
                adopt_by = describe(str(values["target"])).adopt_by
            except KeyError:
                adopt_by = ()  # an unknown target: Run.open says so
        return cls(flow=flow, adopt_by=adopt_by, **values)


def _fields(flow: str) -> dict[str, Any]:
    return {
        f.name: f
        for f in fields(RunSpec)
        if "param" in f.metadata and flow in f.metadata["param"].flows
    }


@dataclass(frozen=True)
class Parameter:
    """One parameter of a flow, as :func:`parameters` lists it."""

    name: str
    param: Param
    required: bool
    default: Any
    type: str
    """The field's annotation as written (``str | None``, ``tuple[str, ...]``...)."""


def parameters(flow: str) -> tuple[Parameter, ...]:
    """The parameters of ``flow`` (``sync`` or ``migrate``), in declaration order."""
    out = []
    for name, spec_field in _fields(flow).items():
        required = spec_field.default is MISSING
        default = None if required else spec_field.default
        out.append(
            Parameter(name, spec_field.metadata["param"], required, default, spec_field.type)
        )
    return tuple(out)
