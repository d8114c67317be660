"""The tenants file: the merchants of a payment platform, each with its own credentials.

A platform holds many merchants ("tenants"), each with its own provider account and its own
customer extract. The tenants file (TOML) lists them::

    state_dir = "state"                  # optional; per tenant and target one DuckDB file
    audit_dir = "audit"                  # optional (default: "audit" beside state_dir); the
                                         # published Parquet audit (pipelines.state.publish)

    [defaults]                           # optional; what a tenant leaves unset
    mode = "upsert"
    rate_limit = 5

    [defaults.sumup]                     # settings every tenant's [tenants.sumup] inherits
    client_id = "cc_platform"            # (the platform's OAuth application)
    client_secret = "PLATFORM_SUMUP_CLIENT_SECRET"

    [[tenants]]
    id = "acme"
    extract = "exports/acme/*.csv"       # a file, a glob, or a list of them; or instead:
    # landing = "landing/acme"           # a landing folder (or a glob in one), read by the
    # processed = "processed/acme"       # landing-folder rules (pipelines.landing)
    mode = "mirror"
    rate_limit = 10                      # requests/s for this tenant (0 = no limit)

    [tenants.sumup]                      # one table per target: its provider's settings
    api_key = "ACME_SUMUP_API_KEY"       # a secret setting: an environment variable's NAME

    [tenants.verifone]
    token = "block:acme-verifone-token"  # ... or a Prefect Secret block's name
    entity_id = "8f6a0c55-…"             # a plain setting: its value

A provider-wide rate limit the runs of several tenants share is declared once and joined by
name (runs on one credential reference share one without a declaration; see
:mod:`pipelines.shared_limits`)::

    [rate_groups.sumup-platform]
    target = "sumup"
    rate = 40                            # requests/s, together

    [[tenants]]
    rate_groups = ["sumup-platform"]

Secret settings (those a provider declares ``secret=True``) hold a *reference*, never the
secret itself; a value that is not a reference is refused, and the error never repeats it.
Relative paths are relative to the tenants file. A tenant gives exactly one of ``extract``
(files or globs, every file read) and ``landing`` (a landing folder, or a glob in one: the
newest complete night of new files read, then moved to ``processed``). Every error names the
file, the tenant and the field (:class:`TenantsError`, CLI exit code 2).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from connectors.providers.registry import UnknownProvider, get_provider, provider_names
from transforms.schema import MODES, Mode

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""Tenant ids: lower-case letters, digits, ``-`` and ``_`` (they name files and limits)."""
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
"""An environment variable's name, as a credential reference."""
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
"""A Prefect block's name (Prefect's own slug rule), after ``block:``."""
BLOCK_PREFIX = "block:"
DEFAULT_MODE: Mode = "upsert"
DEFAULT_STATE_DIR = "state"
DEFAULT_AUDIT_DIR = "audit"
"""The published audit's folder, beside ``state_dir`` unless ``audit_dir`` is given."""

_TOP_KEYS = frozenset({"state_dir", "audit_dir", "defaults", "tenants", "rate_groups"})
_DEFAULT_KEYS = frozenset({"mode", "rate_limit", "rate_burst"})
"""Besides these, ``[defaults.<target>]`` holds settings every tenant's target table
inherits (the platform's OAuth client, a base URL)."""
_TENANT_KEYS = frozenset(
    {
        "id",
        "extract",
        "landing",
        "processed",
        "mode",
        "rate_limit",
        "rate_burst",
        "mapping",
        "rate_groups",
    }
)
_GROUP_KEYS = frozenset({"target", "rate", "burst"})


class TenantsError(ValueError):
    """The tenants file is unusable; the message names the file, tenant and field."""

    def __init__(
        self, path: Path, problem: str, tenant: str | None = None, field: str = ""
    ) -> None:
        where = [str(path)]
        if tenant is not None:
            where.append(f"tenant {tenant}")
        if field:
            where.append(field)
        super().__init__(f"{': '.join(where)}: {problem}")
        self.path = path
        self.tenant = tenant
        self.field = field


@dataclass(frozen=True)
class CredentialRef:
    """Where a secret is found at run time: an environment variable or a Prefect Secret block.

    Holds the name only; the value is read by the child run that uses it
    (:func:`pipelines.fleet_run.resolve_credentials`), never carried in parameters.
    """

    kind: Literal["env", "block"]
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "env" else f"{BLOCK_PREFIX}{self.name}"


def parse_reference(value: str) -> CredentialRef | None:
    """The reference ``value`` spells (``NAME`` or ``block:<name>``), or ``None``."""
    if value.startswith(BLOCK_PREFIX):
        name = value.removeprefix(BLOCK_PREFIX)
        return CredentialRef("block", name) if BLOCK_NAME.fullmatch(name) else None
    return CredentialRef("env", value) if ENV_NAME.fullmatch(value) else None


@dataclass(frozen=True)
class TargetConfig:
    """One tenant's account at one provider: plain settings and credential references."""

    target: str
    settings: Mapping[str, str]
    """Plain provider settings by name (``entity_id``, ``base_url``, ``user``...)."""
    credentials: Mapping[str, CredentialRef]
    """Secret provider settings by name (``api_key``, ``token``, ``refresh_token``...)."""
    inherited: frozenset[str] = frozenset()
    """Settings that came from ``[defaults.<target>]`` rather than the tenant's own table."""


@dataclass(frozen=True)
class Tenant:
    """One merchant of the platform."""

    id: str
    extract: tuple[str, ...]
    """Extract files or globs, absolute (relative ones were resolved against the file); of a
    landing-folder tenant, the glob of its landing folder's files."""
    targets: Mapping[str, TargetConfig]
    """Target name → its configuration, in file order."""
    mode: Mode
    rate_limit: float | None
    """Requests/s for this tenant's runs (``0``: no client-side limit; ``None``: adaptive)."""
    rate_burst: int | None = None
    """The provider bucket's burst for this tenant's credential, when it is below one second
    of calls: a limit the tenant shares grants no more than this at once
    (:class:`pipelines.shared_limits.SharedLimit`)."""
    mapping: str | None = None
    rate_groups: tuple[str, ...] = ()
    """Names of the declared :class:`RateGroup` s this tenant's runs share."""
    landing: bool = False
    """:attr:`extract` is a landing folder's glob, read by the landing-folder rules
    (:mod:`pipelines.landing`: the newest complete night of new files, then moved)."""
    processed: str | None = None
    """Where a landing-folder tenant's files are moved (``None``: ``processed/`` beside its
    landing folder)."""


@dataclass(frozen=True)
class RateGroup:
    """A provider-wide rate limit declared in the file (``[rate_groups.<name>]``): the runs
    of every member tenant on ``target`` stay under ``rate`` requests/s together."""

    name: str
    target: str
    rate: float
    burst: int | None = None
    """The provider's burst for the group, when below one second of calls (``None``: one
    second's worth, ``⌈rate⌉``)."""


@dataclass(frozen=True)
class TenantsFile:
    """A validated tenants file."""

    path: Path
    state_dir: Path
    """Where each tenant and target's DuckDB file lives (absolute)."""
    tenants: tuple[Tenant, ...]
    rate_groups: Mapping[str, RateGroup] = field(default_factory=dict)
    """Declared provider-wide limits by name."""
    audit_dir: Path | None = None
    """Where runs publish their audit (absolute); ``None``: ``audit`` beside
    :attr:`state_dir` (:meth:`audit_folder`)."""

    def audit_folder(self) -> Path:
        """The published audit's folder: ``audit_dir``, else ``audit`` beside ``state_dir``."""
        return self.audit_dir or self.state_dir.parent / DEFAULT_AUDIT_DIR

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant ``tenant_id``; :class:`TenantsError` if the file has none."""
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise TenantsError(self.path, "no such tenant", tenant_id)

    def runs(self) -> tuple[tuple[Tenant, str], ...]:
        """Every (tenant, target) pair, in file order: one child run each."""
        return tuple((t, target) for t in self.tenants for target in t.targets)

    def state_file(self, tenant_id: str, target: str) -> Path:
        """``<state_dir>/<tenant>-<target>.duckdb``: one writer per file, one file per run."""
        return self.state_dir / f"{tenant_id}-{target}.duckdb"


def load_tenants(path: Path | str) -> TenantsFile:
    """Read and validate the tenants file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TenantsError(path, f"cannot read: {exc.__class__.__name__}") from None
    return parse_tenants(text, path)


def parse_tenants(text: str, path: Path) -> TenantsFile:
    """Validate the TOML ``text`` of the tenants file at ``path`` (for relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TenantsError(path, f"not valid TOML: {exc}") from None
    _no_unknown(path, data, _TOP_KEYS, None, "")
    base = path.parent.absolute()
    state_dir = base / _text(path, data.get("state_dir", DEFAULT_STATE_DIR), None, "state_dir")
    audit_dir = None
    if "audit_dir" in data:
        audit_dir = base / _text(path, data["audit_dir"], None, "audit_dir")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise TenantsError(path, "must be a table", None, "defaults")
    names = provider_names()
    _no_unknown(path, defaults, _DEFAULT_KEYS | set(names), None, "defaults.")
    inherited: dict[str, dict[str, Any]] = {}
    for name in names:
        table = defaults.get(name, {})
        if not isinstance(table, dict):
            raise TenantsError(path, "must be a table", None, f"defaults.{name}")
        _target(path, table, None, name, "defaults.")  # validated once, here
        inherited[name] = table
    default_mode = _mode(path, defaults.get("mode", DEFAULT_MODE), None, "defaults.mode")
    default_rate = _rate(path, defaults.get("rate_limit"), None, "defaults.rate_limit")
    default_burst = _burst(path, defaults.get("rate_burst"), None, "defaults.rate_burst")
    groups = _rate_groups(path, data.get("rate_groups", {}), names)
    entries = data.get("tenants")
    if not isinstance(entries, list) or not entries:
        raise TenantsError(path, "list at least one [[tenants]] entry", None, "tenants")
    tenants: list[Tenant] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        tenant = _tenant(path, base, entry, index, default_mode, default_rate, inherited)
        if "rate_burst" not in entry:
            tenant = replace(tenant, rate_burst=default_burst)
        _members(path, tenant, groups)
        if tenant.id in seen:
            raise TenantsError(path, "duplicate tenant id", tenant.id, "id")
        seen.add(tenant.id)
        tenants.append(tenant)
    return TenantsFile(
        path=path,
        state_dir=state_dir,
        tenants=tuple(tenants),
        rate_groups=groups,
        audit_dir=audit_dir,
    )


def _rate_groups(path: Path, table: Any, names: tuple[str, ...]) -> dict[str, RateGroup]:
    if not isinstance(table, dict):
        raise TenantsError(path, "must be a table", None, "rate_groups")
    groups: dict[str, RateGroup] = {}
    for name, entry in table.items():
        field_ = f"rate_groups.{name}"
        if not TENANT_ID.fullmatch(name):
            raise TenantsError(
                path,
                "use 1-63 lower-case letters, digits, '-' or '_' (starting alnum)",
                None,
                field_,
            )
        if not isinstance(entry, dict):
            raise TenantsError(path, "must be a table with target and rate", None, field_)
        _no_unknown(path, entry, _GROUP_KEYS, None, f"{field_}.")
        target = entry.get("target")
        if target not in names:
            raise TenantsError(path, f"choose {' or '.join(names)}", None, f"{field_}.target")
        rate = _rate(path, entry.get("rate"), None, f"{field_}.rate")
        if rate is None or rate <= 0:
            raise TenantsError(path, "must be a number > 0 (requests/s)", None, f"{field_}.rate")
        burst = _burst(path, entry.get("burst"), None, f"{field_}.burst")
        groups[name] = RateGroup(name=name, target=str(target), rate=rate, burst=burst)
    return groups


def _members(path: Path, tenant: Tenant, groups: Mapping[str, RateGroup]) -> None:
    for name in tenant.rate_groups:
        group = groups.get(name)
        if group is None:
            raise TenantsError(path, f"no [rate_groups.{name}] declared", tenant.id, "rate_groups")
        if group.target not in tenant.targets:
            raise TenantsError(
                path,
                f"rate group {name} limits {group.target}, a target this tenant lacks",
                tenant.id,
                "rate_groups",
            )


def _tenant(
    path: Path,
    base: Path,
    entry: Any,
    index: int,
    default_mode: Mode,
    default_rate: float | None,
    inherited: Mapping[str, Mapping[str, Any]],
) -> Tenant:
    label = f"#{index + 1}"
    if not isinstance(entry, dict):
        raise TenantsError(path, "must be a table", label)
    raw_id = entry.get("id")
    if raw_id is None:
        raise TenantsError(path, "missing", label, "id")
    if not isinstance(raw_id, str) or not TENANT_ID.fullmatch(raw_id):
        raise TenantsError(
            path, "use 1-63 lower-case letters, digits, '-' or '_' (starting alnum)", label, "id"
        )
    tid = raw_id
    names = provider_names()
    unknown = sorted(set(entry) - _TENANT_KEYS - set(names))
    for key in unknown:
        if isinstance(entry[key], dict):
            raise TenantsError(path, f"unknown target: choose {' or '.join(names)}", tid, key)
        raise TenantsError(path, "unknown key", tid, key)
    extract, landing, processed = _source(path, base, entry, tid)
    mapping = entry.get("mapping")
    if mapping is not None:
        mapping = str(base / _text(path, mapping, tid, "mapping"))
    targets = {}
    for name in names:
        if name in entry:
            table = entry[name]
            given = inherited.get(name, {})
            if isinstance(table, dict):
                table = {**given, **table}
            config = _target(path, table, tid, name)
            own = entry[name] if isinstance(entry[name], dict) else {}
            targets[name] = replace(config, inherited=frozenset(set(given) - set(own)))
    if not targets:
        raise TenantsError(
            path, f"give at least one target table ([tenants.{names[0]}]...)", tid, "targets"
        )
    return Tenant(
        id=tid,
        extract=extract,
        targets=targets,
        mode=_mode(path, entry.get("mode", default_mode), tid, "mode"),
        rate_limit=_rate(path, entry.get("rate_limit", default_rate), tid, "rate_limit"),
        rate_burst=_burst(path, entry.get("rate_burst"), tid, "rate_burst"),
        mapping=mapping,
        rate_groups=_group_names(path, entry.get("rate_groups", []), tid),
        landing=landing,
        processed=processed,
    )


def _source(
    path: Path, base: Path, entry: Mapping[str, Any], tenant: str
) -> tuple[tuple[str, ...], bool, str | None]:
    """The tenant's extract patterns, whether they are a landing folder's, and its
    ``processed`` folder: exactly one of ``extract`` and ``landing`` is given."""
    if "extract" in entry and "landing" in entry:
        raise TenantsError(path, "give extract or landing, not both", tenant, "landing")
    if "processed" in entry and "landing" not in entry:
        raise TenantsError(path, "only with landing (a landing folder)", tenant, "processed")
    if "landing" not in entry:
        if "extract" not in entry:
            raise TenantsError(
                path,
                "missing: give extract (files or globs) or landing (a folder)",
                tenant,
                "extract",
            )
        return _extract(path, base, entry["extract"], tenant, "extract"), False, None
    patterns = _extract(path, base, entry["landing"], tenant, "landing")
    processed = entry.get("processed")
    if processed is not None:
        processed = str(base / _text(path, processed, tenant, "processed"))
    return tuple(landing_glob(p) for p in patterns), True, processed


def landing_glob(pattern: str) -> str:
    """A landing folder's glob: ``pattern`` itself when it has a wildcard, else every file
    of the folder it names (``landing/acme`` → ``landing/acme/*``)."""
    if any(c in pattern for c in "*?["):
        return pattern
    return str(Path(pattern) / "*")


def _group_names(path: Path, value: Any, tenant: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise TenantsError(path, "give a group's name or a list of them", tenant, "rate_groups")
    return tuple(dict.fromkeys(items))


def _target(
    path: Path, table: Any, tenant: str | None, name: str, prefix: str = ""
) -> TargetConfig:
    if not isinstance(table, dict):
        raise TenantsError(
            path, "must be a table of the provider's settings", tenant, f"{prefix}{name}"
        )
    try:
        provider = get_provider(name)
    except UnknownProvider as exc:  # pragma: no cover - names came from the registry
        raise TenantsError(path, str(exc), tenant, name) from None
    declared = {s.name: s for s in provider.settings}
    settings: dict[str, str] = {}
    credentials: dict[str, CredentialRef] = {}
    for key, value in table.items():
        field = f"{prefix}{name}.{key}"
        setting = declared.get(key)
        if setting is None:
            choices = ", ".join(sorted(declared))
            raise TenantsError(path, f"unknown setting (choose from {choices})", tenant, field)
        if not isinstance(value, str) or not value.strip():
            raise TenantsError(path, "must be a non-empty string", tenant, field)
        if not setting.secret:
            settings[key] = value
            continue
        reference = parse_reference(value)
        if reference is None:
            # Never repeat the value: it may be the secret itself.
            raise TenantsError(
                path,
                "must be a reference to the secret, not the secret: an environment "
                "variable's name (e.g. ACME_SUMUP_API_KEY) or block:<prefect-secret-block>",
                tenant,
                field,
            )
        credentials[key] = reference
    return TargetConfig(target=name, settings=settings, credentials=credentials)


def _extract(
    path: Path, base: Path, value: Any, tenant: str, field: str = "extract"
) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise TenantsError(path, "give a path or glob, or a list of them", tenant, field)
    out: list[str] = []
    for item in items:
        text = _text(path, item, tenant, field)
        out.append(str(base / text))  # an absolute text stays as it is
    return tuple(out)


def _text(path: Path, value: Any, tenant: str | None, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TenantsError(path, "must be a non-empty string", tenant, field)
    return value


def _mode(path: Path, value: Any, tenant: str | None, field: str) -> Mode:
    if value not in MODES:
        raise TenantsError(path, f"choose {', '.join(MODES)}", tenant, field)
    return cast(Mode, value)


def _rate(path: Path, value: Any, tenant: str | None, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise TenantsError(path, "must be a number >= 0 (0 = no limit)", tenant, field)
    return float(value)


def _burst(path: Path, value: Any, tenant: str | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TenantsError(path, "must be a whole number >= 1 (requests at once)", tenant, field)
    return value


def _no_unknown(
    path: Path, table: dict[str, Any], known: frozenset[str], tenant: str | None, prefix: str
) -> None:
    for key in sorted(set(table) - known):
        raise TenantsError(path, "unknown key", tenant, f"{prefix}{key}")
