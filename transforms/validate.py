"""Validation: split a normalised extract into rows a target accepts and itemised rejects.

Every rule is a vectorised polars expression that is true where a row breaks it; the rules a
target gets come from its description (:mod:`connectors.providers.description`), so a column
is checked exactly when it is sent. A null or duplicated ``external_id`` rejects every row with
that key (never first-wins): custsync cannot tell which of two rows the CRM meant.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from connectors.providers.description import Field, Requirement, TargetDescription
from connectors.providers.registry import describe
from transforms.countries import ISO_3166_ALPHA2
from transforms.fields import MAX_FIELD_CHARS
from transforms.schema import CANONICAL_COLUMNS, STATUSES

EMAIL_PATTERN = (
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
"""The WHATWG HTML ``valid e-mail address`` (what browsers accept), on the lower-cased value,
with a dot required in the domain: providers deliver mail to public domains only."""

ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

CONTROL_CHARACTERS = "".join(
    chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)
)
"""C0 controls other than TAB, LF and CR, and DEL. No provider documents accepting them, JSON
must escape them, many systems truncate at a NUL: a value holding one is a broken export.
TAB, LF and CR are text (an address may hold a line break, sent exactly as read)."""

REJECTS_SCHEMA = pl.Schema(
    {
        "external_id": pl.String,
        "field": pl.String,
        "rule": pl.String,
        "message": pl.String,
        "value": pl.String,
        "source_row": pl.Int64,
    }
)
"""Columns of :attr:`Validated.rejects`. ``source_row`` is the 1-based position of the (first)
offending row in the extract, files concatenated in the order given."""

_ROW = "__row"
_COUNT = "__key_rows"


@dataclass(frozen=True)
class Validated:
    """The outcome of :func:`validate`."""

    valid: pl.DataFrame
    """Rows that pass every rule of the target, with exactly the canonical columns."""
    rejects: pl.DataFrame
    """One row per (key, field, rule) broken; see :data:`REJECTS_SCHEMA`."""


@dataclass(frozen=True)
class _Rule:
    field: str
    rule: str
    broken: pl.Expr
    message: pl.Expr
    shows_value: bool = True
    max_chars: int | None = None
    """Set on a length rule: broken when the value has more characters."""
    chars: str = ""
    """Set on a character rule: broken when the value holds one of these characters."""


def _length(name: str) -> pl.Expr:
    return pl.col(name).str.len_chars()


def _control_rule(name: str) -> _Rule:
    """A value holding one of :data:`CONTROL_CHARACTERS`; not shown (the mask would keep it)."""
    return _Rule(
        name,
        "control_character",
        pl.col(name).str.contains_any(list(CONTROL_CHARACTERS)),
        pl.lit("holds a control character (U+0000-U+001F other than tab and line breaks)"),
        shows_value=False,
        chars=CONTROL_CHARACTERS,
    )


def _field_rules(field: Field, target: TargetDescription) -> list[_Rule]:
    name, col = field.column, pl.col(field.column)
    where = f"{target.title} {field.path}"
    rules = [
        _Rule(
            name,
            "max_field_size",
            _length(name) > MAX_FIELD_CHARS,
            pl.format(f"{{}} characters; custsync sends at most {MAX_FIELD_CHARS}", _length(name)),
            max_chars=MAX_FIELD_CHARS,
        )
    ]
    if field.max_length is not None:
        rules.append(
            _Rule(
                name,
                "max_length",
                _length(name) > field.max_length,
                pl.format(
                    f"{{}} characters; {where} allows at most {field.max_length}", _length(name)
                ),
                max_chars=field.max_length,
            )
        )
    if field.pattern is not None:
        rules.append(
            _Rule(
                name,
                "pattern",
                ~col.str.contains(field.pattern),
                pl.lit(f"{where} must match {field.pattern}"),
            )
        )
    if field.format == "email":
        rules.append(
            _Rule(name, "email", ~col.str.contains(EMAIL_PATTERN), pl.lit("not an e-mail address"))
        )
    elif field.format == "country":
        rules.append(
            _Rule(
                name,
                "country",
                ~col.is_in(sorted(ISO_3166_ALPHA2)),
                pl.lit("not an ISO 3166-1 alpha-2 country code"),
            )
        )
    elif field.format == "date":
        parsed = col.str.to_date("%Y-%m-%d", strict=False)
        rules.append(
            _Rule(
                name,
                "date",
                ~col.str.contains(ISO_DATE_PATTERN) | parsed.is_null(),
                pl.lit("not a calendar date in ISO form YYYY-MM-DD"),
            )
        )
    rules.append(_control_rule(name))
    if target.forbidden_characters:
        rules.append(
            _Rule(
                name,
                "forbidden_character",
                col.str.contains_any(list(target.forbidden_characters)),
                pl.lit(target.forbidden_message or f"{target.title} refuses this character"),
                chars=target.forbidden_characters,
            )
        )
    # An absent value breaks no field rule (whether it is required is a rule of its own).
    return [
        _Rule(
            r.field,
            r.rule,
            col.is_not_null() & r.broken,
            r.message,
            r.shows_value,
            r.max_chars,
            r.chars,
        )
        for r in rules
    ]


def _requirement_rule(requirement: Requirement) -> _Rule:
    present = [
        pl.all_horizontal(pl.col(c).is_not_null() for c in group) for group in requirement.any_of
    ]
    return _Rule(
        requirement.field,
        requirement.rule,
        ~pl.any_horizontal(present),
        pl.lit(requirement.message),
        shows_value=False,
    )


def rules_for(target: str) -> list[_Rule]:
    """Every row-level rule of ``target`` (the key rules are applied separately)."""
    described = describe(target)
    rules = [
        _Rule(
            "external_id",
            "max_field_size",
            _length("external_id") > MAX_FIELD_CHARS,
            pl.format(
                f"{{}} characters; custsync accepts at most {MAX_FIELD_CHARS}",
                _length("external_id"),
            ),
            shows_value=False,
            max_chars=MAX_FIELD_CHARS,
        ),
        _control_rule("external_id"),
        _Rule(
            "status",
            "status",
            ~pl.col("status").is_in(STATUSES),
            pl.lit("status must be 'active', 'closed' or empty (active)"),
        ),
    ]
    for field in described.fields:
        rules.extend(_field_rules(field, described))
    rules.extend(_requirement_rule(r) for r in described.requirements)
    return rules


def mask(value: pl.Expr) -> pl.Expr:
    """Show at most the first 3 characters (and at most half) of a value, then ``***``."""
    # One fixed-length slice per case rather than a slice whose length is a per-row
    # expression: the kernel that zips a string column with a length column is the one the
    # planner's rejects panicked in (issue 15), and three constant cases say the same thing.
    chars = value.str.len_chars()
    stars = pl.lit("***")
    return (  # a null value stays null (no branch holds)
        pl.when(chars >= 6)
        .then(value.str.slice(0, 3) + stars)
        .when(chars >= 4)
        .then(value.str.slice(0, 2) + stars)
        .when(chars >= 2)
        .then(value.str.slice(0, 1) + stars)
        .when(value.is_not_null())
        .then(stars)
    )


def row_is_broken(target: str) -> pl.Expr:
    """True where a row breaks one of ``target``'s row-level rules (key rules aside)."""
    # The planner asks this of every row: a field's length limits become one comparison with
    # the smallest (its characters are counted once), its character rules one search for any
    # of their characters (each search reads the whole column), and nulls are settled once at
    # the end (a null result means no rule is broken, as with each rule's own fill_null(False)).
    limits: dict[str, int] = {}
    chars: dict[str, str] = {}
    checks = []
    for rule in rules_for(target):
        if rule.max_chars is not None:
            limits[rule.field] = min(limits.get(rule.field, rule.max_chars), rule.max_chars)
        elif rule.chars:
            chars[rule.field] = chars.get(rule.field, "") + rule.chars
        else:
            checks.append(rule.broken)
    checks.extend(_length(name) > limit for name, limit in limits.items())
    checks.extend(pl.col(name).str.contains_any(list(found)) for name, found in chars.items())
    return pl.any_horizontal(checks).fill_null(False)


FORGOTTEN = "forgotten"
"""The rule of a key erased on request (``custsync forget``): never sent to the target again."""


def forgotten_rule(keys: pl.Series) -> _Rule:
    """The rule that rejects the ``keys`` a target's suppression list holds (no value shown:
    the reject row is no copy of the customer's data)."""
    return _Rule(
        "external_id",
        FORGOTTEN,
        pl.col("external_id").is_in(keys.implode()),
        pl.lit("erased on request (custsync forget): never sent to this target again"),
        shows_value=False,
    )


def validate(
    frame: pl.LazyFrame,
    target: str,
    *,
    row_index: str | None = None,
    forgotten: pl.Series | None = None,
) -> Validated:
    """Apply ``target``'s rules to a normalised extract (see :mod:`transforms.normalise`).

    Returns the rows that pass every rule and one reject per (key, field, rule) broken; rows
    whose key is missing get one ``required`` reject each. The rejected value is masked
    (:func:`mask`): rejects are stored and shown, and must not become a copy of the CRM.
    ``row_index`` names a column already holding each row's 1-based position in the extract
    (used when ``frame`` is a subset); by default rows are numbered here. ``forgotten``: the
    keys of the target's suppression list (rule ``forgotten``).
    """
    rules = rules_for(target)
    if forgotten is not None and forgotten.len():
        rules.append(forgotten_rule(forgotten))
    flags = [f"__r{i}" for i in range(len(rules))]
    key = pl.col("external_id")
    if row_index is None:
        indexed = frame.select(CANONICAL_COLUMNS).with_row_index(_ROW, offset=1)
    else:
        indexed = frame.select(*CANONICAL_COLUMNS, pl.col(row_index).alias(_ROW))
    checked = (
        indexed.with_columns(pl.len().over("external_id").alias(_COUNT))
        .with_columns(
            *(
                rule.broken.fill_null(False).alias(flag)
                for rule, flag in zip(rules, flags, strict=True)
            ),
        )
        .with_columns(
            (key.is_null() | (pl.col(_COUNT) > 1) | pl.any_horizontal(flags)).alias("__bad")
        )
        .collect()
    )
    valid = checked.filter(~pl.col("__bad")).select(CANONICAL_COLUMNS)
    bad = checked.filter(pl.col("__bad"))
    rejects = _rejects(bad, rules, flags)
    if forgotten is not None and forgotten.len():
        # Not a trace of a forgotten customer's values: every reject of its rows, whatever
        # rule, keeps the rule and field only.
        gone = pl.col("external_id").is_in(forgotten.implode())
        rejects = rejects.with_columns(
            pl.when(gone).then(None).otherwise(pl.col("value")).alias("value")
        )
    return Validated(valid=valid, rejects=rejects)


def _rejects(bad: pl.DataFrame, rules: list[_Rule], flags: list[str]) -> pl.DataFrame:
    key = pl.col("external_id")
    parts = [
        bad.filter(key.is_null()).select(
            key,
            field=pl.lit("external_id"),
            rule=pl.lit("required"),
            message=pl.lit("external_id is empty: the row cannot be matched to a customer"),
            value=pl.lit(None, pl.String),
            source_row=pl.col(_ROW).cast(pl.Int64),
        ),
        bad.filter(pl.col(_COUNT) > 1, key.is_not_null()).select(
            key,
            field=pl.lit("external_id"),
            rule=pl.lit("unique"),
            message=pl.format(
                "external_id appears in {} rows; every one is rejected", pl.col(_COUNT)
            ),
            value=pl.lit(None, pl.String),
            source_row=pl.col(_ROW).cast(pl.Int64),
        ),
    ]
    keyed = bad.filter(key.is_not_null())
    for rule, flag in zip(rules, flags, strict=True):
        hits = keyed.filter(pl.col(flag))
        if hits.height == 0:
            continue
        parts.append(
            hits.select(
                key,
                field=pl.lit(rule.field),
                rule=pl.lit(rule.rule),
                message=rule.message,
                value=mask(pl.col(rule.field)) if rule.shows_value else pl.lit(None, pl.String),
                source_row=pl.col(_ROW).cast(pl.Int64),
            )
        )
    rejects = pl.concat(parts, how="vertical").cast(dict(REJECTS_SCHEMA))  # type: ignore[arg-type]
    # A row without a key, and each row of a repeated key, is its own reject: they name rows
    # (two files whose keys overlap reject a row in each). Other rules name a key's field.
    per_row = key.is_null() | (pl.col("rule") == "unique")
    keyed_part = rejects.filter(~per_row).unique(
        ["external_id", "field", "rule"], keep="first", maintain_order=True
    )
    return pl.concat([rejects.filter(per_row), keyed_part]).sort("source_row", "field", "rule")
