"""Canonical rows → the providers' request bodies, and their content hashes.

A target's body is its description (:mod:`connectors.providers.description`, declared by its
package): the field table, the constants every body carries (Verifone's ``entity_id``, from
settings) and the client-chosen id (SumUp's ``customer_id``, derived from ``external_id``).
Payloads are canonical JSON (:mod:`transforms.canonical`). The content hash is the SHA-256
of the payload's content text (its leaf values under each path's frozen content code), so
equal payloads hash equal across runs and versions, and it is computed for millions of rows
without building their JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import polars as pl

from connectors.providers.description import TargetDescription
from connectors.providers.registry import content_codes, describe
from transforms.canonical import (
    Tree,
    content_text,
    content_text_expr,
    hex_digest,
    json_object,
    prune,
)
from transforms.canonical import content_key as canonical_content_key
from transforms.canonical import content_key_expr as canonical_content_key_expr
from transforms.canonical import sha256_text as _sha256_text

Constants = Mapping[str, str]
"""Values of a target's constant body paths (Verifone: ``{"entity_id": ...}``), from settings."""

MAPPED_SCHEMA = pl.Schema(
    {
        "external_id": pl.String,
        "status": pl.String,
        "remote_id": pl.String,
        "payload": pl.String,
        "content_hash": pl.String,
        "content_key": pl.UInt64,
    }
)
"""Columns of :func:`map_rows`' result."""


class _ContentCodes(Mapping[str, str]):
    """Every registered provider's content codes, as one table (the registry keeps it
    consistent: a path has one code, a code one path)."""

    def _table(self) -> Mapping[str, str]:
        return content_codes()

    def __getitem__(self, path: str) -> str:
        return self._table()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


CONTENT_CODES: Mapping[str, str] = _ContentCodes()
"""Payload leaf path → its code in the content text, over every registered provider."""


def _nest(paths: Mapping[str, pl.Expr]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, expr in paths.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = expr
    return tree


def _constant_values(target: TargetDescription, constants: Constants | None) -> dict[str, str]:
    values = dict(constants or {})
    for path, setting in target.constants.items():
        if not values.get(path):
            raise ValueError(
                f"a {target.title} payload needs {path} "
                f"(CUSTSYNC_{target.name.upper()}_{setting.upper()})"
            )
    return {path: values[path] for path in target.constants}


def payload_tree(target: str, *, constants: Constants | None = None) -> Tree:
    """The request body of ``target`` as a tree of polars expressions over canonical columns.

    A client-chosen id is read from a column named after its body path (see :func:`map_rows`).
    """
    described = describe(target)
    paths = {field.path: pl.col(field.column) for field in described.fields}
    for path, value in _constant_values(described, constants).items():
        paths[path] = pl.lit(value, pl.String)
    if described.client_id is not None:
        paths[described.client_id.path] = pl.col(described.client_id.path)
    return _nest(paths)


def _leaves(tree: Tree, prefix: str = "") -> dict[str, pl.Expr]:
    out: dict[str, pl.Expr] = {}
    for key, node in tree.items():
        path = f"{prefix}{key}"
        if isinstance(node, Mapping):
            out.update(_leaves(node, f"{path}."))
        else:
            out[path] = node
    return out


def _content_members(target: str, constants: Constants | None) -> dict[str, pl.Expr]:
    codes = describe(target).content_codes
    leaves = _leaves(payload_tree(target, constants=constants))
    return {codes[path]: expr for path, expr in leaves.items()}


def content_hash_expr(target: str, *, constants: Constants | None = None) -> pl.Expr:
    """The content hash of every row, over canonical columns (and a client-chosen id's).

    Equal to :func:`content_hash` of the row's payload; the payload itself is not built.
    """
    described = describe(target)
    # A constant is never null: the lowest-coded one makes the cheaper text.
    coded = sorted(described.content_codes[path] for path in described.constants)
    present = coded[0] if coded else None
    text = content_text_expr(_content_members(target, constants), present=present)
    return hex_digest(text, "sha256")


def content_key_expr(target: str, *, constants: Constants | None = None) -> pl.Expr:
    """The content key of every row (``UInt64``): equal to :func:`content_key` of its payload,
    which is not built."""
    return canonical_content_key_expr(_content_members(target, constants))


def payload_expr(target: str, *, constants: Constants | None = None) -> pl.Expr:
    """The canonical JSON payload of every row (see :func:`content_hash_expr`'s columns)."""
    return json_object(payload_tree(target, constants=constants))


def mapped_frame(
    frame: pl.LazyFrame,
    target: str,
    *,
    constants: Constants | None = None,
    carry: Sequence[str | pl.Expr] = (),
    payload: bool = True,
    hashed: bool = True,
    keyed: bool = True,
) -> pl.LazyFrame:
    """Lazy form of :func:`map_rows`: it streams, so millions of rows need little memory.

    ``carry`` names further columns (or expressions over the canonical columns and a
    client-chosen id's column) to keep alongside the mapped ones. ``payload=False`` leaves the
    ``payload`` column out: a diff needs only the hashes, and the JSON of the few changed
    rows is cheaper built for them alone. ``hashed=False`` leaves ``content_hash`` out and
    ``keyed=False`` ``content_key`` (for a caller that has them already or needs neither).
    """
    rule = describe(target).client_id
    remote_id = pl.lit(None, pl.String)
    if rule is not None:
        frame = frame.with_columns(rule.expr(pl.col("external_id")).alias(rule.path))
        remote_id = pl.col(rule.path)
    body = [payload_expr(target, constants=constants).alias("payload")] if payload else []
    if hashed:
        body.append(content_hash_expr(target, constants=constants).alias("content_hash"))
    if keyed:
        body.append(content_key_expr(target, constants=constants).alias("content_key"))
    return frame.select(
        pl.col("external_id"), pl.col("status"), remote_id.alias("remote_id"), *body, *carry
    )


def map_rows(
    valid: pl.DataFrame, target: str, *, constants: Constants | None = None
) -> pl.DataFrame:
    """Map validated canonical rows to ``target``'s request bodies.

    Returns ``external_id``, ``status``, ``remote_id`` (a client-chosen id, or null when the
    server assigns it), ``payload`` (canonical JSON text), ``content_hash``
    (:func:`content_hash` of the payload) and ``content_key`` (:func:`content_key`).
    ``constants`` holds the target's constant body values (Verifone: ``entity_id``).
    """
    return mapped_frame(valid.lazy(), target, constants=constants).collect()


def _allowed(target: str) -> dict[str, Any]:
    return _nest(dict.fromkeys(describe(target).body_paths(), pl.lit(None)))


def _keep(record: Mapping[str, Any], allowed: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, shape in allowed.items():
        value = record.get(key)
        if isinstance(shape, Mapping):
            if isinstance(value, Mapping):
                out[key] = _keep(value, shape)
        elif isinstance(value, str | int | float) and value != "":
            out[key] = value
    return out


def payload_from_remote(target: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A provider's GET body → the shape :func:`map_rows` gives that customer's payload.

    Keeps only fields of the request body (drops ``id``, ``created_at``, ``updated_at`` and
    anything else the provider adds), and drops nulls, empty strings and empty objects, which
    the canonical payload never holds.
    """
    return prune(_keep(record, _allowed(target)))


def _members(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_members(value, f"{path}."))
        elif value is not None:
            code = CONTENT_CODES.get(path)
            if code is None:
                raise ValueError(f"{path!r} is not a field custsync sends")
            out.append((code, value))
    return out


def content_hash(payload: Mapping[str, Any]) -> str:
    """The content hash :func:`map_rows` gives a row whose payload is ``payload``.

    SHA-256 hex of the payload's content text (:func:`transforms.canonical.content_text` of
    its non-null leaves under :data:`CONTENT_CODES`); raises ``ValueError`` for a field
    custsync never sends.
    """
    return _sha256_text(content_text(_members(payload)))


def content_key(payload: Mapping[str, Any]) -> int:
    """The content key :func:`map_rows` gives a row whose payload is ``payload``.

    :func:`transforms.canonical.content_key` of the payload's non-null leaves under
    :data:`CONTENT_CODES`: a 64-bit number a diff compares (the SHA-256 content hash is what
    the audit trail shows); raises ``ValueError`` for a field custsync never sends.
    """
    return canonical_content_key(_members(payload))
